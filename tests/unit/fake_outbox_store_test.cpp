// The dispatcher tests' in-memory store keeps the OutboxStore contract, so
// what they show holds for a real store too.
#include "support/fake_outbox_store.h"

#include "support/outbox_store_contract.h"

namespace dispatch::test {

// Named outside an anonymous namespace: CTest names each contract test after
// the harness type.
class FakeHarness {
 public:
  OutboxStore& Store() { return store_; }
  std::int64_t Append(const OutboxRow& row) { return store_.Append(row); }
  std::vector<std::int64_t> PendingIds() { return store_.Ids(FakeOutboxStore::State::kPending); }
  std::vector<std::int64_t> PublishedIds() {
    return store_.Ids(FakeOutboxStore::State::kPublished);
  }
  std::vector<std::int64_t> ParkedIds() { return store_.Ids(FakeOutboxStore::State::kParked); }

 private:
  FakeOutboxStore store_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Fake, OutboxStoreContract, FakeHarness);

}  // namespace dispatch::test
