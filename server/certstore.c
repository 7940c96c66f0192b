#include "certstore.h"
