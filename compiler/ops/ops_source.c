/* ops_source.c - rules of the source ops: input, param, state, const.
 *
 * Sources have no inputs, so no shape or gradient rule: their shape is set when they are
 * created, and autodiff stops at them. The interpreter and emitters bind them to data. */
#include "ops.h"

const OpRules rules_input = {0};
const OpRules rules_param = {0};
const OpRules rules_state = {0};
const OpRules rules_const = {0};
