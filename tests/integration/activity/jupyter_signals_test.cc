// The product and CPU signals against a real Jupyter Notebook run by the
// local provider: GetFromProduct reads api/kernels with the product's token,
// a kernel running code reads as busy, and CpuSeconds grows while it burns CPU.
// Run as root: the local provider starts products as unprivileged uids.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "common/ids.h"
#include "providers/local/local_provider.h"
#include "services/activity/jupyter_activity.h"

namespace puddle {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

std::string ReadText(const std::string& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

// Runs `command` through the shell; returns its exit status and output.
int RunShell(const std::string& command, std::string& output) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  return pclose(pipe);
}

class JupyterSignalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the local provider needs root to start products";
    if (access("/usr/bin/jupyter-notebook", X_OK) != 0) {
      GTEST_SKIP() << "jupyter-notebook is not installed; run scripts/setup.sh";
    }
    char pattern[] = "/tmp/puddle-activity-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
    LocalProviderOptions options;
    options.data_dir = root_ + "/data";
    options.installation_id = "test-" + NewId(10);
    options.uid_min = 200000;
    options.uid_max = 265535;
    options.stop_grace_seconds = 5;
    options.supervisor_executable = PUDDLE_TEST_SUPERVISOR;
    // Ports apart from the local provider tests', which may run at the same time.
    options.port_min = 29650;
    options.port_max = 29699;
    provider_ = std::make_unique<LocalProvider>(options);
  }

  void TearDown() override {
    if (root_.empty()) return;
    if (!state_.empty()) {
      EXPECT_TRUE(provider_->Delete(request_.system_id, state_)) << "delete " << request_.system_id;
    }
    auto owned = provider_->ListOwned();
    ASSERT_TRUE(owned);
    for (const auto& resource : *owned) ADD_FAILURE() << "left running: " << resource.resource_id;
    std::error_code error;
    fs::remove_all(root_, error);
  }

  jupyter::KernelsReport Kernels() {
    auto body = provider_->GetFromProduct(request_, state_, "api/kernels");
    EXPECT_TRUE(body) << body.error().message;
    if (!body) return {};
    auto report = jupyter::ParseKernels(*body);
    EXPECT_TRUE(report) << report.error().message << ": " << *body;
    return report ? *report : jupyter::KernelsReport{};
  }

  double CpuSeconds() {
    auto seconds = provider_->CpuSeconds(request_.system_id, state_);
    EXPECT_TRUE(seconds) << seconds.error().message;
    EXPECT_TRUE(seconds && *seconds);
    return seconds && *seconds ? **seconds : -1;
  }

  std::string root_;
  std::unique_ptr<LocalProvider> provider_;
  LaunchRequest request_;
  std::string state_;
};

TEST_F(JupyterSignalsTest, BusyKernelAndCpuTime) {
  request_.installation_id = "unused";
  request_.system_id = "act-" + NewId(10);
  request_.owner_id = "user-1";
  request_.owner_username = "alice";
  request_.owner_number = 9;
  request_.system_type.id = "cpu-small";
  request_.system_type.cpus = 1;
  request_.system_type.memory_mib = 1024;
  request_.image.product = "jupyter";
  request_.image.launch.command = {
      "jupyter-notebook", "--no-browser", "--ip={address}", "--port={port}",
      "--NotebookApp.port_retries=0", "--NotebookApp.base_url={basePath}",
      "--notebook-dir={dataDir}"};
  request_.image.launch.env = {
      {"JUPYTER_TOKEN", "{token}"},
      {"JUPYTER_CONFIG_DIR", "{dataDir}/.jupyter"},
      {"JUPYTER_DATA_DIR", "{dataDir}/.local/share/jupyter"},
      {"JUPYTER_RUNTIME_DIR", "{dataDir}/.local/share/jupyter/runtime"},
      {"IPYTHONDIR", "{dataDir}/.ipython"}};
  request_.product_token = "tok" + NewId(24);
  auto created = provider_->Create(request_);
  ASSERT_TRUE(created) << created.error().message;
  state_ = *created;
  ASSERT_TRUE(WaitFor([&] { return provider_->CheckProduct(request_, state_) == ProductStatus::kReady; },
                      60s))
      << ReadText(root_ + "/data/systems/" + request_.system_id + "/product.log");

  // A fresh server: no kernel, and the CPU time Jupyter took to start.
  jupyter::KernelsReport before = Kernels();
  EXPECT_EQ(before.kernels, 0);
  EXPECT_FALSE(before.busy);
  double started = CpuSeconds();
  EXPECT_GT(started, 0);

  // The wrong token gets nothing.
  LaunchRequest wrong = request_;
  wrong.product_token = "wrong";
  EXPECT_FALSE(provider_->GetFromProduct(wrong, state_, "api/kernels"));

  // A kernel that burns CPU for 15 s, then sleeps.
  auto observed = provider_->Poll(request_.system_id, state_);
  ASSERT_TRUE(observed) << observed.error().message;
  std::string output;
  std::string command = "JUPYTER_TOKEN=" + request_.product_token + " /usr/bin/python3 " +
                        PUDDLE_BUSY_KERNEL + " " + observed->address + " /systems/" +
                        request_.system_id + "/ " +
                        "'import time\nt = time.time()\nwhile time.time() - t < 15: pass\n"
                        "time.sleep(30)' 2>&1";
  ASSERT_EQ(RunShell(command, output), 0) << output;

  // Jupyter marks the kernel busy when the kernel's status message reaches it,
  // which may come a moment after the request was sent.
  jupyter::KernelsReport busy;
  EXPECT_TRUE(WaitFor(
      [&] {
        busy = Kernels();
        return busy.busy;
      },
      10s))
      << "the kernel never showed as busy";
  EXPECT_EQ(busy.kernels, 1);
  EXPECT_TRUE(busy.last_activity.has_value());

  // Its processes' CPU time grows by most of a core.
  double burning = CpuSeconds();
  EXPECT_TRUE(WaitFor([&] { return CpuSeconds() >= burning + 2.0; }, 15s))
      << "CPU time stayed near " << burning << " s while a kernel burned CPU";
}

}  // namespace
}  // namespace puddle
