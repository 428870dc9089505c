# Checks one man page (-DPAGE=path): groff and man render it without a
# single warning, and no rendered line is wider than MAX_WIDTH (default 80)
# columns (code in .EX blocks is not filled, so groff never complains about
# it). Prints "SKIPPED:" when neither groff nor man is installed.
cmake_minimum_required(VERSION 3.25)

if(NOT MAX_WIDTH)
  set(MAX_WIDTH 80)
endif()

find_program(GROFF groff)
find_program(MAN man)
find_program(LEXGROG lexgrog)
if(NOT GROFF AND NOT MAN)
  message("SKIPPED: neither groff nor man is installed")
  return()
endif()
set(ENV{LC_ALL} C.UTF-8)
set(ENV{MANWIDTH} 80)
set(problems "")

# Runs a renderer; anything on stderr, or a failure, is a problem.
function(render what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
    set(problems "${problems}${what} (exit ${rc}):\n${err}\n" PARENT_SCOPE)
  endif()
  set(rendered "${out}" PARENT_SCOPE)
endfunction()

if(GROFF)
  render("groff -man -ww -z" ${GROFF} -man -ww -z -Tutf8 ${PAGE})
  # Plain ASCII at the width man uses on an 80-column terminal (-Ww: a
  # glyph ASCII lacks is not the page's fault).
  render("groff -Tascii" ${GROFF} -man -Ww -Tascii -P-cbou -rLL=78n ${PAGE})
  # Only the width matters: keep ; [ ] \ from meaning anything to lists.
  string(REGEX REPLACE "[];[\\]" "_" rendered "${rendered}")
  string(REGEX MATCHALL "[^\n]+" lines "${rendered}")
  foreach(line IN LISTS lines)
    string(LENGTH "${line}" len)
    if(len GREATER MAX_WIDTH)
      string(APPEND problems "rendered line of ${len} columns:\n${line}\n")
    endif()
  endforeach()
endif()
if(MAN)
  render("man --warnings=w -l" ${MAN} --warnings=w -l -Tutf8 ${PAGE})
endif()
# mandb indexes the NAME section; lexgrog says whether it can parse it.
if(LEXGROG)
  render("lexgrog" ${LEXGROG} ${PAGE})
endif()

if(NOT problems STREQUAL "")
  message(FATAL_ERROR "${PAGE}:\n${problems}")
endif()
message(STATUS "${PAGE}: no warnings")
