#include "zcpack/format/threads.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace zcpack::format {

int AvailableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  // More CPUs than a cpu_set_t holds, or no affinity support.
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int ThreadsFor(int requested) {
  const int cpus = AvailableCpus();
  return requested <= 0 ? cpus : std::min(requested, cpus);
}

}  // namespace zcpack::format
