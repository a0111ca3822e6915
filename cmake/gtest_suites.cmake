# Read by ctest (a TEST_INCLUDE_FILES script): one ctest test per GoogleTest suite of the test
# program, not one per test. Each test process pays for loading ~225 shared libraries (libav*,
# OpenCV, curl and theirs: ~0.1 s, ~0.3 s under AddressSanitizer), which for 760 one-test processes
# was most of the suite's time; 75 suite processes keep each suite in a process of its own.
#
# Set by the including file: TEST_PROGRAM, TEST_EMULATOR (cross builds: qemu), TEST_ENVIRONMENT,
# TEST_TIMEOUT.
execute_process(COMMAND ${TEST_EMULATOR} "${TEST_PROGRAM}" --gtest_list_tests
                OUTPUT_VARIABLE listing RESULT_VARIABLE listed TIMEOUT 60)
if(NOT listed EQUAL 0)
  # The program does not even list its tests: one test that fails and says so.
  add_test(list_tests ${TEST_EMULATOR} "${TEST_PROGRAM}" --gtest_list_tests)
  return()
endif()
string(REPLACE "\n" ";" lines "${listing}")
foreach(line IN LISTS lines)
  # Suite lines are "Suite." or "Prefix/Suite.  # TypeParam = ..."; their tests are indented.
  if(line MATCHES "^([^ #][^ ]*)\\.( |$)")
    set(suite "${CMAKE_MATCH_1}")
    add_test("${suite}" ${TEST_EMULATOR} "${TEST_PROGRAM}" "--gtest_filter=${suite}.*" --gtest_brief=1)
    set_tests_properties("${suite}" PROPERTIES TIMEOUT "${TEST_TIMEOUT}"
                         ENVIRONMENT "${TEST_ENVIRONMENT}")
  endif()
endforeach()
