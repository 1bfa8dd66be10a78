// The headers of tandem's shared objects do not pull in cereal (issue 14 §3): cereal belongs only
// to the headers that serialize user types (queue.hpp, pipe.hpp, process.hpp, process_pool.hpp).
// Each object's handle still travels: its Traveller is complete without cereal.
#include "tandem/array.hpp"
#include "tandem/barrier.hpp"
#include "tandem/condition.hpp"
#include "tandem/event.hpp"
#include "tandem/fair_lock.hpp"
#include "tandem/lock.hpp"
#include "tandem/semaphore.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/synchronized.hpp"
#include "tandem/value.hpp"

#ifdef CEREAL_CEREAL_HPP_
#error "a shared object's header pulled in cereal"
#endif

namespace detail = tandem::detail;
static_assert(detail::TravelsByHandle<tandem::Lock> && detail::TravelsByHandle<tandem::RLock> &&
              detail::TravelsByHandle<tandem::FairLock> && detail::TravelsByHandle<tandem::Condition> &&
              detail::TravelsByHandle<tandem::Event> && detail::TravelsByHandle<tandem::Semaphore> &&
              detail::TravelsByHandle<tandem::BoundedSemaphore> && detail::TravelsByHandle<tandem::Barrier> &&
              detail::TravelsByHandle<tandem::SharedMemory> && detail::TravelsByHandle<tandem::Value<int>> &&
              detail::TravelsByHandle<tandem::Array<int>> && detail::TravelsByHandle<tandem::Synchronized<int>>);

int main() {}
