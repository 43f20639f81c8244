"""The C part of the build; all metadata is in pyproject.toml.

The extensions are optional: without a compiler the install still succeeds, the SigV4
signer hashes with hashlib, every response is parsed by httptools and event streams are
decoded by eventstream.py's pure Python decoder.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            f"loadgen.transport.{name}",
            sources=[f"loadgen/transport/{name}.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
        for name in ("_sigv4c", "_http11c", "_eventstreamc")
    ]
)
