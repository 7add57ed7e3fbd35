#include "proxy/tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <cerrno>

namespace berth::proxy {

namespace {

// boost::system::error_category's destructor is protected and non-virtual by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class TlsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "berth.tls"; }
  std::string message(int ev) const override {
    char text[256];
    ERR_error_string_n(static_cast<unsigned long>(ev), text, sizeof text);
    return text;
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& tls_category() noexcept {
  static const TlsCategory category;
  return category;
}

namespace {

// Maps the last OpenSSL failure to an error_code. A peer that closes without close_notify is
// EOF here (SSL_OP_IGNORE_UNEXPECTED_EOF): HTTP framing, not TLS, tells berth whether a message
// was complete.
error_code last_error(SSL* ssl, int ret) {
  const int err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_ZERO_RETURN) {
    return net::error::eof;
  }
  if (err == SSL_ERROR_SYSCALL) {
    const unsigned long e = ERR_get_error();
    if (e != 0) {
      return error_code(static_cast<int>(e), tls_category());
    }
    if (errno != 0) {
      return error_code(errno, boost::system::system_category());
    }
    return net::error::eof;
  }
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return net::error::connection_reset;
  }
  return error_code(static_cast<int>(e), tls_category());
}

// SSL_get_error needs an empty error queue before the call it explains. Clearing an empty
// queue costs OpenSSL 3 some 800 instructions (every slot is reset); looking costs a tenth.
void clear_errors() noexcept {
  if (ERR_peek_error() != 0) {
    ERR_clear_error();
  }
}

}  // namespace

TlsStream::TlsStream(socket_type socket, SslPtr ssl)
    : socket_(std::move(socket)), ssl_(std::move(ssl)) {
  error_code ignored;
  socket_.non_blocking(true, ignored);
  if (ssl_) {
    SSL_set_fd(ssl_.get(), socket_.native_handle());
    // Without read-ahead OpenSSL reads each record with two read(2)s, its 5-byte header and
    // then its body: 15 reads for a handshake and a request where 5 do. With it, bytes of the
    // next records may wait inside OpenSSL, so "anything to read?" is SSL_has_pending plus the
    // socket, never the socket alone.
    SSL_set_read_ahead(ssl_.get(), 1);
  }
}

// The SSL object still holds the descriptor number of a closed socket, and the process may
// since have given that number to another client's connection: once closed, a stream never
// calls OpenSSL's I/O again, or its close_notify or a buffered record would reach a stranger.
TlsStream::Want TlsStream::closed(std::size_t& n, error_code& ec) noexcept {
  n = 0;
  ec = net::error::bad_descriptor;
  return Want::done;
}

TlsStream::Want TlsStream::outcome(int r, std::size_t& n, error_code& ec) noexcept {
  if (r == 1) {
    return Want::done;
  }
  switch (SSL_get_error(ssl_.get(), r)) {
    case SSL_ERROR_WANT_READ:
      return Want::read;
    case SSL_ERROR_WANT_WRITE:
      return Want::write;
    default:
      ec = last_error(ssl_.get(), r);
      n = 0;
      return Want::done;
  }
}

TlsStream::Want TlsStream::try_read(net::mutable_buffer b, std::size_t& n,
                                    error_code& ec) noexcept {
  if (!socket_.is_open()) {
    return closed(n, ec);
  }
  clear_errors();
  errno = 0;
  return outcome(SSL_read_ex(ssl_.get(), b.data(), b.size(), &n), n, ec);
}

TlsStream::Want TlsStream::try_write(net::const_buffer b, std::size_t& n,
                                     error_code& ec) noexcept {
  if (!socket_.is_open()) {
    return closed(n, ec);
  }
  clear_errors();
  errno = 0;
  return outcome(SSL_write_ex(ssl_.get(), b.data(), b.size(), &n), n, ec);
}

TlsStream::Want TlsStream::try_flush(error_code& ec) noexcept {
  if (!socket_.is_open()) {
    std::size_t ignored = 0;
    return closed(ignored, ec);
  }
  BIO* const out = SSL_get_wbio(ssl_.get());
  errno = 0;
  if (BIO_flush(out) == 1) {
    return Want::done;
  }
  if (BIO_should_retry(out)) {
    return Want::write;
  }
  ec = errno != 0 ? error_code(errno, boost::system::system_category())
                  : error_code(net::error::broken_pipe);
  return Want::done;
}

void TlsStream::coalesce_records(std::size_t bytes) noexcept {
  if (!ssl_ || coalescing()) {
    return;
  }
  BIO* const socket_bio = SSL_get_wbio(ssl_.get());
  BIO* const buffer = BIO_new(BIO_f_buffer());
  if (buffer == nullptr || BIO_set_write_buffer_size(buffer, static_cast<long>(bytes)) != 1 ||
      BIO_up_ref(socket_bio) != 1) {
    BIO_free(buffer);
    ERR_clear_error();
    return;  // records go out one send each, as before
  }
  // The socket BIO is the read side's as well: the chain holds a reference of its own, and
  // SSL_set0_wbio drops the one the write side had.
  BIO_push(buffer, socket_bio);
  SSL_set0_wbio(ssl_.get(), buffer);
}

net::awaitable<error_code> TlsStream::handshake() {
  if (!ssl_) {
    co_return error_code{};
  }
  for (;;) {
    if (!socket_.is_open()) {
      co_return error_code(net::error::bad_descriptor);
    }
    clear_errors();
    errno = 0;
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
      co_return error_code{};
    }
    const int err = SSL_get_error(ssl_.get(), r);
    error_code ec;
    if (err == SSL_ERROR_WANT_READ) {
      co_await socket_.async_wait(net::socket_base::wait_read, with_ec(ec));
    } else if (err == SSL_ERROR_WANT_WRITE) {
      co_await socket_.async_wait(net::socket_base::wait_write, with_ec(ec));
    } else {
      co_return last_error(ssl_.get(), r);
    }
    if (ec) {
      co_return ec;
    }
  }
}

void TlsStream::shutdown_send() noexcept {
  if (!socket_.is_open()) {
    return;  // see closed(): the descriptor number may be someone else's now
  }
  if (ssl_ && SSL_is_init_finished(ssl_.get())) {
    // One call queues and sends close_notify without waiting for the peer's; if the send
    // buffer is full the alert is lost, and the FIN below still ends the direction.
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    if (coalescing()) {
      (void)BIO_flush(SSL_get_wbio(ssl_.get()));
    }
    ERR_clear_error();
  }
  error_code ignored;
  socket_.shutdown(net::socket_base::shutdown_send, ignored);
}

void TlsStream::close() noexcept {
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace berth::proxy
