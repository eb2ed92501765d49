// The port file: a process that listens on a port the kernel picked (--port=0) writes it here
// once listening, so scripts and tests can find it. Written atomically (temp file + rename):
// readers see either no file or the whole number.
#ifndef SESSIONSERVER_UTIL_PORT_FILE_H_
#define SESSIONSERVER_UTIL_PORT_FILE_H_

#include <string>

namespace sessionserver {

// Writes "<port>\n" to `path`. False if it could not.
bool WritePortFile(const std::string& path, int port);

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_PORT_FILE_H_
