# cmake -DINPUT=<file> -DOUTPUT=<cpp> -DNAME=<function> -P embed_file.cmake
# Writes a C++ file defining `std::string_view kite::server::NAME()` holding INPUT's bytes.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
# Break the initializer into lines of 16 bytes.
string(REGEX REPLACE "(('\\\\x[0-9a-f][0-9a-f]',){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by embed_file.cmake; do not edit.\n"
  "#include <string_view>\n\nnamespace kite::server {\nnamespace {\n"
  "constexpr char kData[${size} + 1] = {\n${bytes}'\\0'};\n}  // namespace\n\n"
  "std::string_view ${NAME}() { return std::string_view(kData, ${size}); }\n\n"
  "}  // namespace kite::server\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
