#include "observe/event_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::observe {
namespace {
constexpr auto kGather = std::chrono::milliseconds(20);  // a record reaches the file within this
constexpr size_t kBatch = 512;                            // or as soon as this many are queued
}  // namespace

Result<std::unique_ptr<EventLog>> EventLog::open(const std::string& path) {
  if (path == "-") return std::unique_ptr<EventLog>(new EventLog(stderr, false, path));
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) return error("cannot open log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<EventLog>(new EventLog(f, true, path));
}

EventLog::EventLog(std::FILE* file, bool owned, std::string path)
    : file_(file), path_(std::move(path)), owned_(owned) {
  writer_ = std::thread([this] { writer_loop(); });
}

EventLog::~EventLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  writer_.join();
  if (owned_) std::fclose(file_);
}

void EventLog::write(std::string line) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(line));
    wake = queue_.size() == 1 || queue_.size() == kBatch;
  }
  if (wake) cv_.notify_one();
}

void EventLog::reopen() {
  {
    std::lock_guard lock(mu_);
    reopen_ = true;
  }
  cv_.notify_one();
}

void EventLog::writer_loop() {
  std::vector<std::string> batch;
  std::string buffer;
  for (;;) {
    bool reopen = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || reopen_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      // Gather for a moment: one write per batch, not one per event, under load.
      cv_.wait_for(lock, kGather, [&] { return stopping_ || queue_.size() >= kBatch; });
      batch.swap(queue_);
      std::swap(reopen, reopen_);
    }
    if (reopen && owned_) {
      if (std::FILE* f = std::fopen(path_.c_str(), "ae")) {
        std::fclose(file_);
        file_ = f;
      } else {
        std::fprintf(stderr, "sluice: cannot reopen log %s: %s (writing to the old file)\n",
                     path_.c_str(), std::strerror(errno));
      }
    }
    buffer.clear();
    for (auto& l : batch) buffer += l;
    batch.clear();
    std::fwrite(buffer.data(), 1, buffer.size(), file_);
    std::fflush(file_);
  }
}

}  // namespace sluice::observe
