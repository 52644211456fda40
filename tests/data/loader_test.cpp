// DataLoader: deterministic seeded order, every sample once per epoch, drop_last, and the
// permutation's exact values (so a change of generator cannot pass unnoticed).

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "data/dataset.h"
#include "data_test_util.h"

namespace mpq {
namespace {

// Sample i has x = [i]: the batches show which samples they hold.
std::unique_ptr<Dataset> counting_dataset(int64_t n) {
  std::string path = testing::temp_dir() + "/count.npy";
  save_npy(path, at::arange(n, at::kFloat).reshape({n, 1}));
  return open_dataset(path);
}

std::vector<int64_t> epoch_order(DataLoader& loader, std::vector<int64_t>* batch_sizes = nullptr) {
  std::vector<int64_t> order;
  Batch b;
  while (loader.next(&b)) {
    EXPECT_FALSE(b.y.defined());
    for (int64_t i = 0; i < b.x.size(0); ++i) order.push_back(int64_t(b.x[i][0].item<float>()));
    if (batch_sizes) batch_sizes->push_back(b.x.size(0));
  }
  return order;
}

TEST(Loader, PermutationIsFixedAcrossPlatforms) {
  // Computed independently with a Python transcription of splitmix64 + Fisher-Yates.
  EXPECT_EQ(random_permutation(10, 42), (std::vector<int64_t>{0, 9, 5, 8, 6, 4, 7, 2, 1, 3}));
  EXPECT_EQ(random_permutation(10, 0), (std::vector<int64_t>{6, 3, 2, 9, 8, 1, 4, 7, 0, 5}));
  EXPECT_TRUE(random_permutation(0, 1).empty());
  EXPECT_EQ(random_permutation(1, 1), (std::vector<int64_t>{0}));
}

TEST(Loader, SequentialOrder) {
  auto data = counting_dataset(23);
  DataLoader loader(*data, 5);
  EXPECT_EQ(loader.num_batches(), 5);
  std::vector<int64_t> sizes;
  std::vector<int64_t> order = epoch_order(loader, &sizes);
  std::vector<int64_t> identity(23);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(order, identity);
  EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 5, 5, 3}));
  Batch b;
  EXPECT_FALSE(loader.next(&b));  // stays at the end until the next epoch
  loader.start_epoch(1);
  EXPECT_EQ(epoch_order(loader), identity);
}

TEST(Loader, ShuffleIsDeterministicAndComplete) {
  auto data = counting_dataset(103);
  DataLoader a(*data, 10, true, 7), b(*data, 10, true, 7), c(*data, 10, true, 8);
  std::vector<int64_t> oa = epoch_order(a), ob = epoch_order(b), oc = epoch_order(c);
  EXPECT_EQ(oa, ob);
  EXPECT_NE(oa, oc);
  EXPECT_EQ(oa, a.order());
  std::vector<int64_t> sorted = oa;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(103);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);  // every sample exactly once
  EXPECT_NE(oa, identity);
  // Epoch e of seed s is epoch 0 of seed s + e, and differs from epoch 0.
  a.start_epoch(1);
  std::vector<int64_t> oa1 = epoch_order(a);
  EXPECT_EQ(oa1, oc);
  EXPECT_NE(oa1, oa);
  a.start_epoch(0);
  EXPECT_EQ(epoch_order(a), oa);
  EXPECT_EQ(oa, random_permutation(103, 7));
}

TEST(Loader, DropLast) {
  auto data = counting_dataset(23);
  DataLoader loader(*data, 5, true, 3, /*drop_last=*/true);
  EXPECT_EQ(loader.num_batches(), 4);
  std::vector<int64_t> sizes;
  std::vector<int64_t> order = epoch_order(loader, &sizes);
  EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 5, 5}));
  EXPECT_EQ(order, std::vector<int64_t>(loader.order().begin(), loader.order().begin() + 20));
  DataLoader tiny(*data, 50, false, 0, true);
  EXPECT_EQ(tiny.num_batches(), 0);
  Batch b;
  EXPECT_FALSE(tiny.next(&b));
  EXPECT_MPQ_ERROR(DataLoader(*data, 0), "batch size");
}

TEST(Loader, RespectsLimit) {
  std::string path = testing::temp_dir() + "/count.npy";
  save_npy(path, at::arange(50, at::kFloat).reshape({50, 1}));
  DataOptions o;
  o.spec = path;
  o.limit = 12;
  auto data = open_dataset(o);
  DataLoader loader(*data, 5, true, 1);
  EXPECT_EQ(loader.num_batches(), 3);
  std::vector<int64_t> order = epoch_order(loader);
  std::sort(order.begin(), order.end());
  std::vector<int64_t> first(12);
  std::iota(first.begin(), first.end(), 0);
  EXPECT_EQ(order, first);
}

}  // namespace
}  // namespace mpq
