// Whether a type holds an address of this process that the compiler can see: a pointer, a
// reference, a member pointer or a view (std::string_view, std::span, std::reference_wrapper, an
// iterator), on its own or as a field
// of an aggregate, however deeply nested (through arrays and base classes too). Such a value
// copied as bytes into another process points into memory that process does not have.
//
// C++20 cannot list a struct's fields, but it can aggregate-initialize one: an initializer that
// converts to any non-aggregate type initializes one leaf field, and brace elision walks it into
// nested aggregates and arrays. Counting how many such initializers the struct accepts gives its
// leaves; the same count of initializers that refuse to become an address fails exactly when a
// leaf is one. What stays invisible: fields of a class with constructors or private members (its
// own duty), and leaves past the first kMaxCheckedLeaves.
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace tandem::detail {

// Classes that are only an address: views, reference wrappers (std::ref), iterators.
template <class T>
inline constexpr bool kIsView = std::is_class_v<T> && std::input_or_output_iterator<T>;
template <class C, class Traits>
inline constexpr bool kIsView<std::basic_string_view<C, Traits>> = true;
template <class E, std::size_t N>
inline constexpr bool kIsView<std::span<E, N>> = true;
template <class T>
inline constexpr bool kIsView<std::reference_wrapper<T>> = true;

// Trivially copyable wrappers with a hidden tag (engaged, active index) that must be checked when
// read: copied as bytes from a broken worker, a garbage tag would make using them undefined.
template <class T>
inline constexpr bool kIsTagged = false;
template <class T>
inline constexpr bool kIsTagged<std::optional<T>> = true;
template <class... Ts>
inline constexpr bool kIsTagged<std::variant<Ts...>> = true;

namespace holds_address_detail {

inline constexpr std::size_t kMaxCheckedLeaves = 256;

template <class U>
concept Aggregate = std::is_class_v<U> && std::is_aggregate_v<U>;
template <class U>
concept AddressLeaf = std::is_pointer_v<U> || std::is_member_pointer_v<U> || kIsView<U>;
template <class U>
concept TaggedLeaf = kIsTagged<std::remove_cv_t<U>>;

// Converts to any leaf: counts them.
template <std::size_t>
struct AnyLeaf {
  template <class U>
    requires(!Aggregate<U>)
  operator U() const;  // NOLINT: implicit by design; never defined, only asked about
};
// Converts to any leaf but an address (and, being a prvalue, binds to no non-const reference).
template <std::size_t>
struct NoAddressLeaf {
  template <class U>
    requires(!Aggregate<U> && !AddressLeaf<U>)
  operator U() const;  // NOLINT
};
// At position `Tagged`, converts only to a tagged wrapper; elsewhere to any leaf. (Refusing a
// tagged wrapper would not do: std::optional<double> is made from anything a double is.)
template <std::size_t Tagged>
struct TagAt {
  template <std::size_t I>
  struct Leaf {
    template <class U>
      requires(!Aggregate<U> && (I != Tagged || TaggedLeaf<U>))
    operator U() const;  // NOLINT
  };
};

template <class T, template <std::size_t> class Leaf, std::size_t... I>
constexpr bool initializes(std::index_sequence<I...>) {
  return requires { T{Leaf<I>{}...}; };
}

// The most leaves T accepts (kMaxCheckedLeaves + 1 when it accepts none: a reference field).
template <class T, std::size_t N = 0, bool accepted_fewer = false>
constexpr std::size_t leaf_count() {
  if constexpr (N > kMaxCheckedLeaves) {
    return accepted_fewer ? kMaxCheckedLeaves : kMaxCheckedLeaves + 1;
  } else {
    constexpr bool accepts = initializes<T, AnyLeaf>(std::make_index_sequence<N>{});
    if constexpr (!accepts && accepted_fewer) {
      return N - 1;
    } else {
      return leaf_count<T, N + 1, accepted_fewer || accepts>();
    }
  }
}

// Whether some leaf of T can be a tagged wrapper: one position at a time (leaves past the first
// kMaxTagCheckedLeaves are not looked at: the check costs a compilation per position).
inline constexpr std::size_t kMaxTagCheckedLeaves = 64;
template <class T, std::size_t... Position>
constexpr bool some_leaf_tagged(std::index_sequence<Position...>) {
  constexpr std::size_t leaves = sizeof...(Position);
  return (initializes<T, TagAt<Position>::template Leaf>(std::make_index_sequence<leaves>{}) || ...);
}
template <class T>
constexpr bool aggregate_holds_tag() {
  constexpr std::size_t leaves = leaf_count<T>();
  if constexpr (leaves > kMaxTagCheckedLeaves) {
    return false;
  } else {
    return some_leaf_tagged<T>(std::make_index_sequence<leaves>{});
  }
}

// Whether a leaf of T is one that `Leaf` refuses to become.
template <class T, template <std::size_t> class Leaf>
constexpr bool aggregate_holds() {
  constexpr std::size_t leaves = leaf_count<T>();
  if constexpr (leaves > kMaxCheckedLeaves) {
    return true;  // no count of plain values initializes it: a field is a reference
  } else {
    return !initializes<T, Leaf>(std::make_index_sequence<leaves>{});
  }
}

}  // namespace holds_address_detail

template <class T>
inline constexpr bool kHoldsAddress = [] {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_reference_v<U> || holds_address_detail::AddressLeaf<U>) {
    return true;
  } else if constexpr (std::is_array_v<U>) {
    return kHoldsAddress<std::remove_all_extents_t<U>>;
  } else if constexpr (holds_address_detail::Aggregate<U>) {
    return holds_address_detail::aggregate_holds<U, holds_address_detail::NoAddressLeaf>();
  } else {
    return false;
  }
}();

// Whether a type is, or has a field that is, a tagged wrapper (std::optional, std::variant),
// which cannot travel as raw bytes.
template <class T>
inline constexpr bool kHoldsTag = [] {
  using U = std::remove_cv_t<T>;
  if constexpr (kIsTagged<U>) {
    return true;
  } else if constexpr (std::is_array_v<U>) {
    return kHoldsTag<std::remove_all_extents_t<U>>;
  } else if constexpr (holds_address_detail::Aggregate<U>) {
    return holds_address_detail::aggregate_holds_tag<U>();
  } else {
    return false;
  }
}();

}  // namespace tandem::detail
