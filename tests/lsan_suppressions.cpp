// LeakSanitizer's suppressions for the test program, in one place (the hook may be defined once).
// libx265 keeps allocations of every encoder it opens until the process ends: x265's own, opened
// only to make test inputs (the video sweep's HEVC clips, libheif's HEIC pictures). Nothing of
// ours is suppressed.
extern "C" const char* __lsan_default_suppressions() { return "leak:libx265.so\n"; }
