/* placeholder: replaced by the real suite */
#include "testlib.h"
Suite *suite_optim(void) { return suite_create("optim"); }
