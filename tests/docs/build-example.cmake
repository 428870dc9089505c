# Extracts the C program of a man page's EXAMPLE section and compiles it:
# the page is the only copy, so page and program cannot drift apart.
#   -DPAGE=man page   -DSRC=extracted .c   -DEXE=program   -DCC=compiler
#   -DFLAGS="compiler flags"   -DINCLUDE=header dir   -DLIB=shared library
# The program is the text between the roff comment lines
#   .\" EXAMPLE-BEGIN <name>   and   .\" EXAMPLE-END
# minus request lines (.EX, .EE, .in). Inside it the page may write \e for
# a backslash, \- for a minus, \(aq \(dq \(ga \(ti \(ha for ' " ` ~ ^ and
# \& for nothing; any other escape fails the test rather than being
# guessed at.
cmake_minimum_required(VERSION 3.25)

file(READ "${PAGE}" text)
string(REGEX MATCH "\n\\.\\\\\" EXAMPLE-BEGIN [^ \n]+\\.c\n(.*)\n\\.\\\\\" EXAMPLE-END" found "${text}")
if(NOT found)
  message(FATAL_ERROR "${PAGE}: no EXAMPLE-BEGIN ... EXAMPLE-END block")
endif()
set(code "\n${CMAKE_MATCH_1}")
# Drop roff requests: C never starts a line with a dot.
string(REGEX REPLACE "\n\\.[^\n]*" "" code "${code}")
string(REGEX REPLACE "^\n" "" code "${code}")

string(REPLACE "\\e" "@NESTD_BACKSLASH@" code "${code}")
string(REPLACE "\\-" "-" code "${code}")
string(REPLACE "\\(aq" "'" code "${code}")
string(REPLACE "\\(dq" "\"" code "${code}")
string(REPLACE "\\(ga" "`" code "${code}")
string(REPLACE "\\(ti" "~" code "${code}")
string(REPLACE "\\(ha" "^" code "${code}")
string(REPLACE "\\&" "" code "${code}")
string(FIND "${code}" "\\" bad)
if(NOT bad EQUAL -1)
  string(SUBSTRING "${code}" ${bad} 12 what)
  message(FATAL_ERROR "${PAGE}: unsupported roff escape in the example: '${what}'")
endif()
string(REPLACE "@NESTD_BACKSLASH@" "\\" code "${code}")
file(WRITE "${SRC}" "${code}\n")

separate_arguments(flags UNIX_COMMAND "${FLAGS}")
get_filename_component(libdir "${LIB}" DIRECTORY)
execute_process(
  COMMAND ${CC} ${flags} -I${INCLUDE} -o ${EXE} ${SRC} ${LIB} -Wl,-rpath,${libdir}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "${SRC} (from ${PAGE}) does not compile cleanly:\n${out}${err}")
endif()
message(STATUS "${SRC}: extracted from ${PAGE} and compiled")
