"""Build of the C extension quickloop._core (metadata lives in pyproject.toml)."""
import glob
import os

from setuptools import Extension, setup

extra_compile_args = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
extra_link_args = []
# Each variant builds in its own directory: build_ext decides what to rebuild
# by timestamps, not flags, so a shared build/ would hand the plain objects to
# the sanitizer build (or the reverse).
variant = []
if os.environ.get("QUICKLOOP_SANITIZE"):
    # make asan: AddressSanitizer + UndefinedBehaviorSanitizer build.
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    extra_compile_args += flags
    extra_link_args += flags
    variant.append("asan")
if os.environ.get("QUICKLOOP_DEBUG"):
    extra_compile_args += ["-O0", "-g", "-UNDEBUG"]
    variant.append("debug")
build_base = os.path.join("build", "-".join(variant)) if variant else "build"

setup(
    options={"build": {"build_base": build_base}},
    ext_modules=[
        Extension(
            "quickloop._core",
            sources=sorted(glob.glob("csrc/*.c")),
            depends=sorted(glob.glob("csrc/*.h")),
            include_dirs=["csrc"],
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
    ],
)
