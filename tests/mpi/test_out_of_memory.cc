// An allocation that fails inside the engine is an error, not a crash: the
// allgather output of a tensor whose gathered size no machine can hold fails
// with BRAID_ERR_OUT_OF_MEMORY on every rank (the same message everywhere),
// and the engine goes on. The input is never read: no rank runs the collective.
#include <cstdint>
#include <string>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;

class OutOfMemory : public ctu::BraidTest {};

TEST_F(OutOfMemory, AnAllgatherOutputNoMachineCanHoldFailsEverywhere) {
  float never_read = 0;
  // 2^40 rows of float32 on every rank: terabytes once gathered.
  std::vector<int64_t> shape = {int64_t{1} << 40, 1};
  braid_tensor_t t = {&never_read, BRAID_FLOAT32, 2, shape.data(), BRAID_DEVICE_CPU, nullptr};
  Handle h;
  const std::string name = ctu::UniqueName("huge");
  ASSERT_EQ(braid_allgather_async(name.c_str(), &t, h.out()), BRAID_OK) << braid_last_error();
  EXPECT_EQ(h.Wait(), BRAID_ERR_OUT_OF_MEMORY) << h.Error();
  const std::string message = h.Error();
  EXPECT_NE(message.find("out of memory while allocating the allgather output"), std::string::npos)
      << message;
  // Rank 0's message, on every rank.
  int length = static_cast<int>(message.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string zeros = message;
  zeros.resize(static_cast<size_t>(length));
  MPI_Bcast(&zeros[0], length, MPI_CHAR, 0, MPI_COMM_WORLD);
  EXPECT_EQ(message, zeros);
  EXPECT_TRUE(ctu::EngineUsable());
}

}  // namespace
