// Compiles the non-template parts of Asio (with its SSL layer) and Beast once
// for the whole program. Every translation unit that includes Asio or Beast
// is compiled with BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION (set on puddle_api), so none of them
// compiles this code again.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
