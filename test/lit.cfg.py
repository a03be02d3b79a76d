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

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.pipec_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(["pipec-opt", "pipec"], [config.pipec_tools_dir])
