//===- VisibleGpus.h - how many GPUs this machine shows its processes -*- C++ -*-===//
//
// `pipec-run --transport nccl` starts every rank on this machine, and NCCL
// refuses two ranks of a communicator on one GPU, but only after every
// process has started and met at the rendezvous. pipec-run counts the GPUs
// first, without CUDA (it links none): CUDA_VISIBLE_DEVICES when set (the
// processes inherit it; its entries up to the first that names no device,
// as CUDA reads it), else the driver's list (/proc/driver/nvidia/gpus, one
// entry per GPU). Unknown (no driver, as on the build machines) leaves the
// ranks to say what they find.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TOOLS_PIPEC_RUN_VISIBLEGPUS_H
#define PIPEC_TOOLS_PIPEC_RUN_VISIBLEGPUS_H

#include <string>

namespace pipecrun {

/// The GPUs processes started here will see, or -1 when unknown; `from`
/// says where the count came from, for a message.
int visibleGpus(std::string &from);

} // namespace pipecrun

#endif // PIPEC_TOOLS_PIPEC_RUN_VISIBLEGPUS_H
