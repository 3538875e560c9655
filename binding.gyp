# Native addon. Linked with -z nodelete: Node unloads an addon when the last worker
# thread using it exits, and unloading libgomp under its idle OpenMP threads crashes the
# process (SIGSEGV at exit of a worker that ran kernels).
# Kernels for each ISA live in their own static library so each gets its
# own -m flags; the dispatcher (isa.cc) picks one at load time by CPUID, so a binary built
# here runs on CPUs without AVX-512 too. Files are found by suffix:
#   *_avx512.cc -> ftune_avx512, *_avx2.cc -> ftune_avx2, everything else -> the addon.
{
  "variables": {
    "ftune_cflags": ["-O3", "-std=c++17", "-fopenmp", "-fPIC", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "ftune_avx512",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/src').filter(f=>f.endsWith('_avx512.cc')).map(f=>'native/src/'+f).join(' ')\")"],
      "cflags_cc": ["<@(ftune_cflags)", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mfma", "-mf16c"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "ftune_avx2",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/src').filter(f=>f.endsWith('_avx2.cc')).map(f=>'native/src/'+f).join(' ')\")"],
      "cflags_cc": ["<@(ftune_cflags)", "-mavx2", "-mfma", "-mf16c"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "ftune_native",
      "dependencies": ["ftune_avx512", "ftune_avx2"],
      "sources": ["<!@(node -p \"require('fs').readdirSync('native/src').filter(f=>f.endsWith('.cc')&&!/_(avx512|avx2)\\.cc$/.test(f)).map(f=>'native/src/'+f).join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["<@(ftune_cflags)"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags!": ["-fno-exceptions"],
      "ldflags": ["-fopenmp", "-Wl,-z,nodelete"]
    }
  ]
}
