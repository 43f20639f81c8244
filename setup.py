"""The C part of the build; all metadata is in pyproject.toml.

The extension is optional: without a compiler the install still succeeds and
loadgen.transport.sigv4 signs with hashlib instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "loadgen.transport._sigv4c",
            sources=["loadgen/transport/_sigv4c.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
