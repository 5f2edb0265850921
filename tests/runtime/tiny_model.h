/* tiny_model.h - a hand-written model satisfying mlc_model_api for the runtime tests:
 * softmax regression 784 -> 10 with plain SGD ("fc.weight" [784, 10], "fc.bias" [10]). */
#ifndef TINY_MODEL_H
#define TINY_MODEL_H

#include "mlc_model.h"

extern const mlc_model_api tiny_api;
extern const mlc_tensor_desc tiny_tensors[2];
/* The same over CIFAR-sized inputs [3, 32, 32] ("tiny_c10"; default augment "flip"). */
extern const mlc_model_api tiny_c10_api;
/* A model without labels ("tiny_ae"): its one parameter "pixels.mean" [784] is every
 * sample's output "recon", its loss the mean squared error against the image (input
 * "pixels", bound to the images by type). Not a classifier. */
extern const mlc_model_api tiny_ae_api;
extern const mlc_model_api tiny_ae_argmax_api; /* tiny_ae with an i32 output */

#endif
