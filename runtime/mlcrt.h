/* mlcrt.h - umbrella header of the mlc runtime library (libmlcrt): everything generated
 * model code and embedding programs may call. */
#ifndef MLCRT_H
#define MLCRT_H

#include "ckpt.h"
#include "data.h"
#include "idx.h"
#include "loader.h"
#include "mlc_model.h"
#include "mlcrt_error.h"
#include "rng.h"
#include "schedule.h"
#include "timing.h"
#include "trainer.h"

#endif
