#include "observe/event_log.h"

#include <cerrno>
#include <cstring>

namespace sluice::observe {

Result<std::unique_ptr<EventLog>> EventLog::open(const std::string& path) {
  if (path == "-") return std::unique_ptr<EventLog>(new EventLog(stderr, false));
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) return error("cannot open log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<EventLog>(new EventLog(f, true));
}

EventLog::EventLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {
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
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(line));
  }
  cv_.notify_one();
}

void EventLog::writer_loop() {
  std::vector<std::string> batch;
  std::string buffer;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    buffer.clear();
    for (auto& l : batch) buffer += l;
    batch.clear();
    std::fwrite(buffer.data(), 1, buffer.size(), file_);
    std::fflush(file_);
  }
}

}  // namespace sluice::observe
