// Heap settings for processes that move a stream through large short-lived buffers.
#pragma once

#include <malloc.h>

namespace herd {

// A session's stream passes through herd-noded and `herd` in messages of up to a quarter MiB,
// each allocated, copied and freed at once. With glibc's defaults each of them grows the heap and
// trims it back (page faults, and a TLB flush on every CPU per trim), which costs more than
// moving the bytes. After this, free memory up to 32 MiB stays in the heap and blocks up to
// 4 MiB are allocated from it. Call once, early, from the thread that moves the stream.
inline void KeepHeapForStreams() {
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

}  // namespace herd
