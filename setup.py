"""The C part of the build; all metadata is in pyproject.toml.

The extensions are optional: without a compiler the install still succeeds, the SigV4
signer hashes with hashlib, every response is parsed by httptools, event streams and their
tokens are read by eventstream.py's and tokens.py's pure Python code, and histograms record
one value at a time.
"""

from setuptools import Extension, setup

EXTENSIONS = {  # module: its C sources
    "loadgen._hdrc": ["loadgen/_hdrc.c"],
    "loadgen.transport._sigv4c": ["loadgen/transport/_sigv4c.c"],
    "loadgen.transport._http11c": ["loadgen/transport/_http11c.c"],
    # the decoder hands PayloadParts to the token parser in C
    "loadgen.transport._eventstreamc": [
        "loadgen/transport/_eventstreamc.c",
        "loadgen/transport/_tokensc.c",
    ],
}

setup(
    ext_modules=[
        Extension(
            name,
            sources=sources,
            depends=["loadgen/transport/_tokensc.h"],
            extra_compile_args=["-O2"],
            optional=True,
        )
        for name, sources in EXTENSIONS.items()
    ]
)
