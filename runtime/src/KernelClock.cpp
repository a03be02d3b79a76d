//===- KernelClock.cpp - the rank thread's kernel-time table --------------===//

#include "pipert/KernelClock.h"

thread_local pipert::KernelTimes *pipert::threadKernelTimes = nullptr;
thread_local bool pipert::threadStepTraced = false;
