# Fails unless the library's dynamic symbols are exactly the version script's
# global list. Usage: cmake -DLIB=<.so> -DMAP=<.map> -P check_exports.cmake
execute_process(COMMAND nm -D --defined-only ${LIB} OUTPUT_VARIABLE out
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm -D ${LIB} failed")
endif()
string(REGEX MATCHALL "[TDBR] [A-Za-z_][A-Za-z0-9_]*" syms "${out}")
list(TRANSFORM syms REPLACE "^. " "")
list(REMOVE_ITEM syms LIBIOMMU_NEST_0)
file(READ ${MAP} map)
# A letter after the prefix: the generated iommu_nest__* named in a comment is no export.
string(REGEX MATCHALL "iommu_nest_[a-z][a-z0-9_]*" want "${map}")
list(SORT syms)
list(SORT want)
if(NOT syms STREQUAL want)
  message(FATAL_ERROR "exported: ${syms}\nexpected: ${want}")
endif()
