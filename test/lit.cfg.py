# lit configuration of pipec's tests: test/Dialect, test/Passes, test/Import, ...
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "pipec"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.pipec_obj_root, "test")

config.substitutions.append(("%models", os.path.join(config.pipec_src_root, "models")))
config.substitutions.append(("%src_root", config.pipec_src_root))
config.environment["FILECHECK_OPTS"] = "-enable-var-scope --allow-unused-prefixes=false"

# The suite's tools beside pipec's own: LLVM's FileCheck, count, not and
# split-file (scripts/setup.sh installs them with LLVM).
for tool in ("FileCheck", "count", "not", "split-file"):
    if not os.path.exists(os.path.join(config.llvm_tools_dir, tool)):
        lit_config.fatal(f"{tool} is not in {config.llvm_tools_dir}: the lit suite needs LLVM's "
                         "testing tools (FileCheck, count, not, split-file); run scripts/setup.sh")

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.pipec_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(["pipec-opt", "pipec"], [config.pipec_tools_dir])
