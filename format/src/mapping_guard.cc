#include "zcpack/format/mapping_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace zcpack::format {

// One registered mapping. `begin` is non-zero while the slot is in use and is
// written last on registration and first on release, so the handler never
// pairs a begin with another mapping's end.
struct MappingSlot {
  std::atomic<bool> in_use{false};
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<bool> failed{false};
};

namespace {

static_assert(std::atomic<uintptr_t>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

MappingSlot g_slots[MappingGuard::kMaxMappings];
struct sigaction g_previous;  // written once, before our handler is installed
uintptr_t g_page_size = 4096;

// The action that was in place before ours: call it, or end the process the
// way the default action would.
void Chain(int signal_number, siginfo_t* info, void* context) {
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(signal_number, info, context);
    return;
  }
  if (g_previous.sa_handler == SIG_IGN && info->si_code <= 0) return;  // a kill(2), ignored
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(signal_number);
    return;
  }
  // Default action (a fault cannot be ignored): restore it and re-raise; the
  // signal is blocked in here, so it is delivered as this handler returns.
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigaction(signal_number, &default_action, nullptr);
  raise(signal_number);
}

void HandleSigbus(int signal_number, siginfo_t* info, void* context) {
  // si_code > 0: raised by the kernel for a fault, not sent by kill(2).
  if (info != nullptr && info->si_code > 0) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
    bool recovered = false;
    for (MappingSlot& slot : g_slots) {
      const uintptr_t begin = slot.begin.load(std::memory_order_acquire);
      if (begin == 0 || address < begin) continue;
      const uintptr_t end = slot.end.load(std::memory_order_acquire);
      if (address >= end) continue;
      if (!recovered) {
        const uintptr_t page = address & ~(g_page_size - 1);
        void* zeros = mmap(reinterpret_cast<void*>(page), end - page, PROT_READ,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (zeros == MAP_FAILED) break;  // cannot recover: as if unguarded
        recovered = true;
      }
      // Every guard of this range fails (a container's own guard while it
      // hashes, and the runtime's model over the same mapping, say).
      slot.failed.store(true, std::memory_order_release);
    }
    if (recovered) return;  // the faulting access runs again and reads zeros
  }
  Chain(signal_number, info, context);
}

void InstallHandler() {
  g_page_size = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  sigaction(SIGBUS, nullptr, &g_previous);
  struct sigaction action = {};
  action.sa_sigaction = HandleSigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGBUS, &action, nullptr);
}

}  // namespace

MappingGuard::MappingGuard(const uint8_t* base, size_t size) {
  if (base == nullptr || size == 0) return;
  static std::once_flag installed;
  std::call_once(installed, InstallHandler);
  for (MappingSlot& slot : g_slots) {
    bool expected = false;
    if (!slot.in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) continue;
    slot.failed.store(false, std::memory_order_relaxed);
    slot.end.store(reinterpret_cast<uintptr_t>(base) + size, std::memory_order_relaxed);
    slot.begin.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    slot_ = &slot;
    return;
  }
}

MappingGuard::MappingGuard(MappingGuard&& other) noexcept : slot_(other.slot_) {
  other.slot_ = nullptr;
}

MappingGuard& MappingGuard::operator=(MappingGuard&& other) noexcept {
  if (this != &other) {
    Release();
    slot_ = other.slot_;
    other.slot_ = nullptr;
  }
  return *this;
}

MappingGuard::~MappingGuard() { Release(); }

void MappingGuard::Release() {
  if (slot_ == nullptr) return;
  slot_->begin.store(0, std::memory_order_release);
  slot_->end.store(0, std::memory_order_relaxed);
  slot_->in_use.store(false, std::memory_order_release);
  slot_ = nullptr;
}

bool MappingGuard::failed() const {
  return slot_ != nullptr && slot_->failed.load(std::memory_order_relaxed);
}

}  // namespace zcpack::format
