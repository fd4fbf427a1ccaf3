"""Build of the C extension quickloop._core (metadata lives in pyproject.toml)."""
import glob
import os

from setuptools import Extension, setup

extra_compile_args = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
extra_link_args = []
if os.environ.get("QUICKLOOP_SANITIZE"):
    # make asan: AddressSanitizer + UndefinedBehaviorSanitizer build.
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    extra_compile_args += flags
    extra_link_args += flags
if os.environ.get("QUICKLOOP_DEBUG"):
    extra_compile_args += ["-O0", "-g", "-UNDEBUG"]

setup(
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
