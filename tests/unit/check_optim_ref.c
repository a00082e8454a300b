/* placeholder: replaced by the real suite */
#include "testlib.h"
Suite *suite_optim_ref(void) { return suite_create("optim_ref"); }
