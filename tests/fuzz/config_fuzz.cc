// libFuzzer target: herd.toml parsing on arbitrary text. Any input must give a Config or an
// error, never a crash; an accepted config must print as TOML that parses back, and merging the
// input over itself must not crash either.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  herd::Result<herd::config::Config> config = herd::config::ParseConfig(text, "fuzz.toml");
  if (config.ok()) {
    herd::Result<herd::config::Config> again =
        herd::config::ParseConfig(herd::config::ToToml(*config), "canonical.toml");
    if (!again.ok() || again->queues != config->queues || again->classes != config->classes) {
      std::abort();  // ToToml wrote something ParseConfig reads differently
    }
  }
  (void)herd::config::MergeToml(text, "base.toml", text, "extra.toml");
  return 0;
}
