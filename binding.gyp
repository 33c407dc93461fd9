# Build of the native core (node-addon-api). Not published: prebuilt binaries ship in
# prebuilds/ instead, so that installing the package never compiles (see scripts/prebuild.mjs).
{
  "targets": [
    {
      "target_name": "multiproc",
      "sources": [
        "native/addon.cc",
        "native/bufpool.cc",
        "native/channel.cc",
        "native/process.cc",
        "native/ring.cc",
        "native/shm.cc",
        "native/socket.cc",
        "native/sync.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        # A worker thread being terminated cannot take a JS exception: without this, throwing
        # one (an EOFError from a receive the termination ended) would abort the process.
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "11.0"
          }
        }]
      ]
    }
  ]
}
