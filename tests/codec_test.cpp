// How values travel between processes (detail/codec.hpp): what may travel, and decoding that
// never trusts the bytes it is given.
#include "tandem/detail/codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <functional>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "tandem/array.hpp"
#include "tandem/barrier.hpp"
#include "tandem/condition.hpp"
#include "tandem/event.hpp"
#include "tandem/fair_lock.hpp"
#include "tandem/lock.hpp"
#include "tandem/semaphore.hpp"
#include "tandem/value.hpp"

namespace {

using tandem::detail::ByteReader;
using tandem::detail::ByteWriter;
using tandem::detail::kCanTravel;

struct Plain {
  int id;
  double weights[3];
  struct {
    char tag[4];
  } inner;
};
struct WithPointer {
  int id;
  const char* text;
};
struct WithView {
  std::string_view text;
};
struct Nested {
  int id;
  WithPointer deep;
};
struct WithArrayOfPointers {
  int* pointers[2];
};
struct WithReference {
  int& value;
};
struct Base {
  int* owner;
};
struct Derived : Base {
  int more;
};
struct Serialized {
  std::string name;
  std::vector<int> values;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, values);
  }
};

// What may travel, pinned: the compiler sees inside aggregates, through arrays and bases.
static_assert(kCanTravel<int> && kCanTravel<Plain> && kCanTravel<std::array<double, 4>>);
static_assert(kCanTravel<std::vector<Plain>> && kCanTravel<std::string> && kCanTravel<Serialized>);
static_assert(!kCanTravel<int*> && !kCanTravel<WithPointer> && !kCanTravel<WithView> && !kCanTravel<Nested>);
static_assert(!kCanTravel<WithArrayOfPointers> && !kCanTravel<WithReference> && !kCanTravel<Derived>);
static_assert(!kCanTravel<std::string_view> && !kCanTravel<std::span<int>> && !kCanTravel<std::array<int*, 2>>);
static_assert(!kCanTravel<std::vector<WithPointer>>);
// Addresses in disguise: a reference wrapper, an iterator.
static_assert(!kCanTravel<std::reference_wrapper<int>> && !kCanTravel<std::vector<int>::iterator>);
struct WithRef {
  std::reference_wrapper<const int> value;
};
static_assert(!kCanTravel<WithRef>);
// A tagged wrapper as a field cannot be copied as bytes (its tag could be garbage): without a
// cereal serialize() such a struct does not travel; with one, it travels checked.
struct WithOptionalField {
  int id;
  std::optional<double> weight;
};
struct WithVariantField {
  std::variant<int, float> value;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(value);
  }
};
static_assert(!kCanTravel<WithOptionalField> && kCanTravel<WithVariantField>);
static_assert(!tandem::detail::kIsRaw<WithVariantField>);

template <class T>
T round_trip(const T& value) {
  ByteWriter out;
  tandem::detail::encode(out, value);
  ByteReader in(out.bytes());
  T back = tandem::detail::decode<T>(in);
  EXPECT_EQ(in.left(), 0u);
  return back;
}

TEST(Codec, ValuesOfEveryKindRoundTrip) {
  EXPECT_EQ(round_trip(std::string("hello")), "hello");
  EXPECT_EQ(round_trip(std::vector<int>{1, 2, 3}), (std::vector<int>{1, 2, 3}));
  const auto nested = std::vector<std::vector<std::string>>{{"a"}, {}, {"b", "c"}};
  EXPECT_EQ(round_trip(nested), nested);
  const auto map = std::map<std::string, std::optional<int>>{{"x", 1}, {"y", std::nullopt}};
  EXPECT_EQ(round_trip(map), map);
  const auto variant = std::variant<int, std::string>(std::string("v"));
  EXPECT_EQ(round_trip(variant), variant);
  const auto serialized = round_trip(Serialized{"s", {4, 5}});
  EXPECT_EQ(serialized.name, "s");
  EXPECT_EQ(serialized.values, (std::vector<int>{4, 5}));
}

// A count that the bytes after it cannot fill is an error at once: nothing is sized to it first.
// (cereal's own reader would resize to 2^40 strings before reading the first.)
TEST(Codec, ACountLargerThanTheMessageIsAnErrorBeforeAnyAllocation) {
  const auto start = std::chrono::steady_clock::now();
  for (const std::uint64_t count : {std::uint64_t{1} << 40, std::uint64_t{1} << 62, ~std::uint64_t{0}, std::uint64_t{17}}) {
    ByteWriter out;
    out.write_raw(count);
    out.write("abcdefgh", 8);
    {
      ByteReader in(out.bytes());
      EXPECT_THROW(tandem::detail::decode<std::vector<std::string>>(in), tandem::Error) << count;
    }
    {
      ByteReader in(out.bytes());
      EXPECT_THROW((tandem::detail::decode<std::map<int, std::string>>(in)), tandem::Error) << count;
    }
    {
      ByteReader in(out.bytes());
      EXPECT_THROW(tandem::detail::decode<Serialized>(in), tandem::Error) << count;
    }
    {
      ByteReader in(out.bytes());
      EXPECT_THROW(tandem::detail::decode<std::vector<double>>(in), tandem::Error) << count;
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

// Values whose bytes have a meaning beyond their size: a bool's byte must be 0 or 1, an optional's
// engaged flag too, a variant's index must name one of its types. Found by the codec fuzzer.
TEST(Codec, ABoolOrATagOutOfRangeIsAnError) {
  const std::uint8_t bytes[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const auto view = std::as_bytes(std::span(bytes));
  {
    ByteReader in(view);
    EXPECT_THROW(tandem::detail::decode<bool>(in), tandem::Error);
  }
  {
    ByteReader in(view);
    EXPECT_THROW(tandem::detail::decode<std::optional<double>>(in), tandem::Error);
  }
  {
    ByteReader in(view);
    EXPECT_THROW((tandem::detail::decode<std::variant<int, float>>(in)), tandem::Error);
  }
  EXPECT_EQ(round_trip(std::optional<double>(2.5)), std::optional<double>(2.5));
  EXPECT_EQ(round_trip(std::vector<bool>{true, false, true}), (std::vector<bool>{true, false, true}));
  EXPECT_TRUE(round_trip(true));
}

TEST(Codec, TruncatedMessagesAreErrors) {
  ByteWriter out;
  tandem::detail::encode(out, Serialized{"name", {1, 2, 3, 4}});
  for (std::size_t cut = 0; cut < out.size(); ++cut) {
    ByteReader in(out.bytes().first(cut));
    EXPECT_THROW(tandem::detail::decode<Serialized>(in), tandem::Error) << cut;
  }
}

}  // namespace

// Every shared object travels through the one Traveller (detail::HandleAccess): a handle read
// back as its own type works, and read as another kind is refused, whether the tag differs (an
// Event read as a Lock) or only the kind inside the state (a Semaphore read as a
// BoundedSemaphore, a Value of another size).
template <class Written, class Read>
bool reads_back_as(const Written& object) {
  tandem::detail::ByteWriter out;
  tandem::detail::Traveller<Written>::encode(out, object);
  tandem::detail::ByteReader in(out.bytes());
  try {
    tandem::detail::Traveller<Read>::decode(in);
    return true;
  } catch (const tandem::Error&) {
    return false;
  }
}

TEST(Handles, EachSharedObjectReadsBackAsItselfAndNeverAsAnotherKind) {
  const tandem::Lock lock;
  const tandem::RLock rlock;
  const tandem::Semaphore semaphore(2);
  const tandem::BoundedSemaphore bounded(2);
  const tandem::Event event;
  const tandem::Barrier barrier(2);
  const tandem::FairLock fair;
  const tandem::Value<long> value(7);
  const tandem::Array<int> array(4);
  EXPECT_TRUE((reads_back_as<tandem::Lock, tandem::Lock>(lock)));
  EXPECT_TRUE((reads_back_as<tandem::RLock, tandem::RLock>(rlock)));
  EXPECT_TRUE((reads_back_as<tandem::Semaphore, tandem::Semaphore>(semaphore)));
  EXPECT_TRUE((reads_back_as<tandem::BoundedSemaphore, tandem::BoundedSemaphore>(bounded)));
  EXPECT_TRUE((reads_back_as<tandem::Event, tandem::Event>(event)));
  EXPECT_TRUE((reads_back_as<tandem::Barrier, tandem::Barrier>(barrier)));
  EXPECT_TRUE((reads_back_as<tandem::FairLock, tandem::FairLock>(fair)));
  EXPECT_TRUE((reads_back_as<tandem::Value<long>, tandem::Value<long>>(value)));
  EXPECT_TRUE((reads_back_as<tandem::Array<int>, tandem::Array<int>>(array)));

  EXPECT_FALSE((reads_back_as<tandem::Lock, tandem::RLock>(lock)));
  EXPECT_FALSE((reads_back_as<tandem::RLock, tandem::Lock>(rlock)));
  EXPECT_FALSE((reads_back_as<tandem::Semaphore, tandem::BoundedSemaphore>(semaphore)));
  EXPECT_FALSE((reads_back_as<tandem::BoundedSemaphore, tandem::Semaphore>(bounded)));
  EXPECT_FALSE((reads_back_as<tandem::Event, tandem::Lock>(event)));
  EXPECT_FALSE((reads_back_as<tandem::Barrier, tandem::Event>(barrier)));
  EXPECT_FALSE((reads_back_as<tandem::FairLock, tandem::Lock>(fair)));
  EXPECT_FALSE((reads_back_as<tandem::Value<long>, tandem::Value<int>>(value)));
  EXPECT_FALSE((reads_back_as<tandem::Array<int>, tandem::Array<long>>(array)));
  EXPECT_FALSE((reads_back_as<tandem::Lock, tandem::Value<long>>(lock)));
}

TEST(Handles, AConditionTravelsWithTheKindOfItsLock) {
  for (const bool reentrant : {false, true}) {
    tandem::Condition condition = reentrant ? tandem::Condition(tandem::RLock()) : tandem::Condition();
    tandem::detail::ByteWriter out;
    tandem::detail::Traveller<tandem::Condition>::encode(out, condition);
    tandem::detail::ByteReader in(out.bytes());
    tandem::Condition copy = tandem::detail::Traveller<tandem::Condition>::decode(in);
    copy.lock();
    EXPECT_TRUE(condition.locked());           // the same lock
    EXPECT_EQ(copy.try_lock(), reentrant);     // and of the same kind
    if (reentrant) copy.unlock();
    copy.unlock();
    EXPECT_FALSE(condition.locked());

    std::vector<std::byte> bytes(out.bytes().begin(), out.bytes().end());
    bytes[0] = std::byte{2};  // names neither kind
    tandem::detail::ByteReader garbage(bytes);
    EXPECT_THROW(tandem::detail::Traveller<tandem::Condition>::decode(garbage), tandem::Error);
  }
}

void an_action() {}

TEST(Handles, ABarrierTravelsWithItsAction) {
  const tandem::Barrier with_action(2, an_action);
  tandem::detail::ByteWriter out;
  tandem::detail::Traveller<tandem::Barrier>::encode(out, with_action);
  std::vector<std::byte> bytes(out.bytes().begin(), out.bytes().end());
  // The action follows the state's handle: a flag, then the function's offset.
  const std::size_t flag_at = bytes.size() - 1 - sizeof(std::int64_t);
  EXPECT_EQ(bytes[flag_at], std::byte{1});
  std::int64_t offset = 0;
  std::memcpy(&offset, bytes.data() + flag_at + 1, sizeof offset);
  EXPECT_EQ(tandem::detail::function_at<void (*)()>(offset), &an_action);
  bytes[flag_at] = std::byte{2};
  tandem::detail::ByteReader garbage(bytes);
  EXPECT_THROW(tandem::detail::Traveller<tandem::Barrier>::decode(garbage), tandem::Error);
}
