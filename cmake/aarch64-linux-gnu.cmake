# Cross-compiles for 64-bit ARM Linux (RK3588, Raspberry Pi 5, Jetson) with Debian's
# g++-aarch64-linux-gnu, and runs the tests under qemu-user:
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-arm64 && QEMU_CPU=cortex-a72 ctest --test-dir build-arm64
#
# Target libraries come from Debian's multiarch arm64 packages (libjpeg62-turbo-dev:arm64,
# libpng-dev:arm64 in /usr/lib/aarch64-linux-gnu); scripts/cross-test-arm64.sh installs them.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# pkg-config (FindCURL uses it) must see the arm64 .pc files, not the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)

# qemu's CPU model for the tests: this cache variable bakes `-cpu NAME` into every test command;
# left empty, qemu reads the QEMU_CPU environment variable at run time (qemu's default: max), so
# one build can be tested as several CPUs.
set(QEMU_CPU "" CACHE STRING "qemu-aarch64 -cpu model for the tests (empty: $QEMU_CPU or max)")
# -L: the guest's /lib is the cross toolchain's (its ld.so, libc, libstdc++). LD_LIBRARY_PATH=/lib
# keeps libc with that ld.so: the multiarch libc6:arm64 (pulled in by the arm64 -dev packages)
# is another build, and an ld.so of one build with the libc of another cannot start threads.
# The arm64 libraries themselves (libjpeg, libpng, ...) still load from /usr/lib/aarch64-linux-gnu.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/lib)
if(QEMU_CPU)
  list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -cpu ${QEMU_CPU})
endif()
