// MappingGuard: keeps a file mapping that fails under its reader (the
// runtime's model, the converter's sources) from killing the process.
//
// Reading a page of a MAP_SHARED file mapping that lies past the file's
// current end (another process truncated it) or that the kernel cannot read
// from the disk raises SIGBUS in the reading thread, and SIGBUS kills the
// process without a word. A MappingGuard registers one mapping with a
// process-wide SIGBUS handler, installed with sigaction() on the first
// registration. When a fault raised by the kernel lies inside a registered
// mapping, the handler replaces that mapping from the faulting page to its end
// with anonymous zero-filled read-only pages (one mmap(MAP_FIXED)) and marks
// it failed; the faulting instruction then runs again and reads zeros. Any
// other SIGBUS goes to the handler that was installed before ours, or to the
// default action (the process ends, as it would have without us).
//
// So every thread that reads the mapping — the caller, pool workers in the
// middle of a piece, the prefetcher — carries on over zeros, and the call in
// progress turns the failure into a status when it checks failed() (the
// runtime's Session::Evaluate() does after every layer, the converter after
// every chunk). The mapping stays zeros: the file must be mapped again.
//
// The SIGBUS disposition is process-wide: a handler an application installs
// later must chain to the one it replaces, or guarded faults end the process.
//
// Why not sigsetjmp()/siglongjmp() from the handler: the fault happens on
// whichever thread touches the page, usually a pool worker that has no jump
// buffer to return to, and jumping over C++ frames skips their destructors.
//
// The handler is async-signal-safe: it reads a fixed table of lock-free
// atomics and calls mmap(2), sigaction(2) and raise(3) only.
#ifndef ZCPACK_FORMAT_MAPPING_GUARD_H_
#define ZCPACK_FORMAT_MAPPING_GUARD_H_

#include <cstddef>
#include <cstdint>

namespace zcpack::format {

struct MappingSlot;  // an entry of the handler's table

// Move-only. Thread-safe: registration and release may happen on any thread
// while faults are handled on others; failed() may be called from any thread.
class MappingGuard {
 public:
  // Mappings guarded at once; a registration beyond this is refused
  // (guarded() is false and a fault there ends the process as before).
  static constexpr size_t kMaxMappings = 256;

  MappingGuard() = default;
  // Guards [base, base + size), which must stay mapped until the guard is
  // destroyed or reset.
  MappingGuard(const uint8_t* base, size_t size);
  MappingGuard(MappingGuard&& other) noexcept;
  MappingGuard& operator=(MappingGuard&& other) noexcept;
  MappingGuard(const MappingGuard&) = delete;
  MappingGuard& operator=(const MappingGuard&) = delete;
  ~MappingGuard();  // unregisters; call before unmapping

  // Whether the mapping is registered with the handler.
  bool guarded() const { return slot_ != nullptr; }
  // Whether a fault in the mapping has been caught: its bytes from the
  // faulting page on now read as zeros. Cheap (one relaxed atomic load).
  bool failed() const;

 private:
  void Release();
  MappingSlot* slot_ = nullptr;
};

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_MAPPING_GUARD_H_
