# Checks that a man page keeps up with what it documents:
#   -DPAGE=libiommu-nest.3 -DMAP=libiommu-nest.map
#       every function the version script exports has a prototype in the
#       page (a line "...NAME(" of the SYNOPSIS);
#   -DPAGE=iommu-nestctl.8 -DCTL=iommu-nestctl
#       every command and every long option that "iommu-nestctl --help"
#       lists is documented: a command as a .B/.BI/.BR line starting with
#       its name, an option as \-\-name.
cmake_minimum_required(VERSION 3.25)

file(READ "${PAGE}" page)
set(missing "")

if(MAP)
  file(READ "${MAP}" map)
  string(REGEX MATCHALL "[\n\t ](iommu_nest_[a-z0-9_]+);" syms "${map}")
  if(NOT syms)
    message(FATAL_ERROR "${MAP}: no iommu_nest_* symbols found")
  endif()
  foreach(s IN LISTS syms)
    string(STRIP "${s}" s)
    string(REPLACE ";" "" s "${s}")
    string(REGEX MATCH "[ *]${s}\\(" found "${page}")
    if(NOT found)
      string(APPEND missing "  function ${s}\n")
    endif()
  endforeach()
endif()

if(CTL)
  execute_process(COMMAND ${CTL} --help RESULT_VARIABLE rc OUTPUT_VARIABLE help
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${CTL} --help failed (${rc}):\n${err}")
  endif()
  string(REGEX REPLACE "[];[\\]" "_" help "${help}")
  # Commands: "  name ARGS   what it does", indented by exactly two spaces.
  string(REGEX MATCHALL "\n  [a-z][a-z0-9-]*" cmds "${help}")
  string(REGEX MATCHALL "--[a-z][a-z0-9-]*" opts "${help}")
  if(NOT cmds OR NOT opts)
    message(FATAL_ERROR "${CTL} --help: no commands or options found in:\n${help}")
  endif()
  list(REMOVE_DUPLICATES cmds)
  list(REMOVE_DUPLICATES opts)
  foreach(c IN LISTS cmds)
    string(STRIP "${c}" c)
    string(REGEX MATCH "\n\\.B[IR]? \"?${c}[ \"\n]" found "${page}")
    if(NOT found)
      string(APPEND missing "  command ${c}\n")
    endif()
  endforeach()
  foreach(o IN LISTS opts)
    string(REPLACE "-" "\\-" roff "${o}")
    string(FIND "${page}" "${roff}" at)
    if(at EQUAL -1)
      string(APPEND missing "  option ${o}\n")
    endif()
  endforeach()
endif()

if(NOT missing STREQUAL "")
  message(FATAL_ERROR "${PAGE} does not document:\n${missing}")
endif()
message(STATUS "${PAGE}: documents everything")
