#include "sfid.h"
