// Result and Error are header-only; this unit exists so the core library always has one object.
#include "core/status.h"
