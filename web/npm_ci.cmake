# Installs web/node_modules from package-lock.json when it is missing or older than the lock
# (npm records what it installed in node_modules/.package-lock.json).
#   cmake -DWEB_DIR=... -DNPM=... -P npm_ci.cmake
set(installed ${WEB_DIR}/node_modules/.package-lock.json)
if(EXISTS ${installed} AND NOT ${WEB_DIR}/package-lock.json IS_NEWER_THAN ${installed})
  return()
endif()
message(STATUS "web: npm ci (installing the pinned UI toolchain into web/node_modules)")
execute_process(COMMAND ${NPM} ci --no-audit --no-fund --loglevel=error
                WORKING_DIRECTORY ${WEB_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "web: npm ci failed (exit ${rc}); the npm registry must be reachable "
                      "the first time web/node_modules is installed")
endif()
