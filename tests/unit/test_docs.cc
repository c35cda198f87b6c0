// The configuration page must list every declared variable.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/config.h"

namespace braid {
namespace {

TEST(Docs, ConfigurationPageListsEveryVariable) {
  std::ifstream page(BRAID_SOURCE_DIR "/docs/configuration.md");
  ASSERT_TRUE(page.good()) << "docs/configuration.md is missing";
  std::stringstream text;
  text << page.rdbuf();
  for (const ConfigVarInfo& v : DescribeConfigVars()) {
    EXPECT_NE(text.str().find("`" + v.name + "`"), std::string::npos)
        << v.name << " is not documented in docs/configuration.md";
  }
}

}  // namespace
}  // namespace braid
