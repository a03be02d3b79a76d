#!/usr/bin/env python3
"""Checks that the code's dependencies run the way docs/DESIGN.md says.

    check_layering.py SOURCE_ROOT

Two views of the same rule, both from the sources (no build needed):
the #include lines of each folder, and the libraries each CMakeLists.txt
links. DESIGN.md: tools use everything; import, passes and emit use the
dialects; the passes know no target code and no JSON; the dialects know no
passes; the runtime knows no MLIR. compiler/analysis holds what the
passes, the emitter and the reference executor share, so none of them
reaches into another. Prints every violation (file, line, what) and exits
1, or prints a summary and exits 0.
"""
import os
import re
import sys

# folder -> include prefixes it must not use
FORBIDDEN_INCLUDES = {
    "dialects/": ["compiler/", "tools/", "nlohmann/"],
    "compiler/analysis/": ["compiler/passes/", "compiler/import/", "compiler/emit/",
                           "compiler/reference/", "nlohmann/"],
    "compiler/passes/": ["compiler/import/", "compiler/emit/", "compiler/reference/",
                         "nlohmann/"],
    "compiler/emit/": ["compiler/passes/", "compiler/import/", "compiler/reference/"],
    "compiler/import/": ["compiler/passes/", "compiler/emit/", "compiler/reference/",
                         "compiler/analysis/"],
    "compiler/schedule/": ["mlir/", "dialects/", "compiler/passes/", "compiler/emit/"],
    "compiler/plan/": ["mlir/", "dialects/", "compiler/passes/", "compiler/emit/"],
    "compiler/cluster/": ["mlir/", "dialects/", "compiler/passes/", "compiler/emit/",
                          "compiler/analysis/", "runtime/"],
    "runtime/": ["mlir/", "llvm/", "compiler/", "dialects/"],
}
# library -> libraries it must not link
FORBIDDEN_LINKS = {
    "PipecNN": ["PipecImport", "PipecPasses", "PipecAnalysis", "PipecEmit", "PipecReference",
                "nlohmann_json"],
    "PipecAnalysis": ["PipecImport", "PipecPasses", "PipecEmit", "PipecReference",
                      "nlohmann_json"],
    "PipecPasses": ["PipecImport", "PipecEmit", "PipecReference", "nlohmann_json"],
    "PipecEmit": ["PipecImport", "PipecPasses", "PipecReference"],
    "PipecReference": ["PipecImport", "PipecEmit"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')
SOURCE = (".cpp", ".h", ".cu", ".cuh", ".def", ".inc")


def includes(root):
    bad, files = [], 0
    for folder, banned in FORBIDDEN_INCLUDES.items():
        base = os.path.join(root, folder)
        for dirpath, _, names in os.walk(base):
            for name in names:
                if not name.endswith(SOURCE):
                    continue
                path = os.path.join(dirpath, name)
                files += 1
                with open(path, errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if m and any(m.group(1).startswith(b) for b in banned):
                            bad.append(f"{os.path.relpath(path, root)}:{n}: includes {m.group(1)}")
    return bad, files


def links(root):
    """The LINK_LIBS / target_link_libraries of each library in CMakeLists.txt."""
    bad, found = [], set()
    for dirpath, _, names in os.walk(root):
        if "CMakeLists.txt" not in names or "/build" in dirpath or "/." in dirpath:
            continue
        path = os.path.join(dirpath, "CMakeLists.txt")
        text = open(path).read()
        for m in re.finditer(r"add_mlir(?:_dialect)?_library\((\w+)(.*?)\n\)", text, re.S):
            lib, body = m.group(1), m.group(2)
            found.add(lib)
            libs = body.split("LINK_LIBS", 1)[1].split() if "LINK_LIBS" in body else []
            for other in re.finditer(r"target_link_libraries\((?:obj\.)?" + lib + r"\b([^)]*)\)", text):
                libs += other.group(1).split()
            for banned in FORBIDDEN_LINKS.get(lib, []):
                if any(l == banned or l.startswith(banned + "::") for l in libs):
                    bad.append(f"{os.path.relpath(path, root)}: {lib} links {banned}")
    missing = sorted(set(FORBIDDEN_LINKS) - found)
    for lib in missing:
        bad.append(f"no CMakeLists.txt defines {lib} (the rule names a library that is gone)")
    return bad, len(found)


def main():
    root = sys.argv[1]
    bad_inc, files = includes(root)
    bad_link, libs = links(root)
    for b in bad_inc + bad_link:
        print(b)
    if bad_inc or bad_link:
        print(f"layering: {len(bad_inc) + len(bad_link)} violations")
        return 1
    print(f"layering: {files} source files and {libs} libraries as docs/DESIGN.md says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
