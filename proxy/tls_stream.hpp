#pragma once
// TlsStream: a byte stream over a stream socket (TCP or unix), with or without TLS, that Beast's
// HTTP algorithms and the splice loop read and write.
//
// Why not asio::ssl::stream: berth must half-close a TLS connection (send close_notify and
// FIN, keep reading) when dockerd ends one direction of a hijacked exec/attach stream, and
// asio's ssl::stream can only do a two-way shutdown that also consumes the read side. It also
// holds two 17 KiB BIO buffers per connection for the connection's whole life, where OpenSSL
// on the socket itself, with its record buffers freed whenever a session goes idle, keeps idle
// connections small. So OpenSSL runs here directly on the non-blocking descriptor, and
// readiness comes from async_wait.
//
// One reader and one writer may be outstanding at a time, on the stream's single-threaded
// executor (OpenSSL objects are not thread-safe, but interleaved calls on one thread are).

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "proxy/net.hpp"

namespace berth::proxy {

struct SslDeleter {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};
struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;
using SslCtxPtr = std::shared_ptr<SSL_CTX>;

/// The error category for OpenSSL failures surfaced through error_code.
const boost::system::error_category& tls_category() noexcept;

class TlsStream {
 public:
  using socket_type = net::generic::stream_protocol::socket;
  using executor_type = socket_type::executor_type;

  /// A plaintext stream (ssl == nullptr) or a TLS stream whose SSL object is bound to the
  /// socket here; handshake() then runs the TLS handshake.
  TlsStream(socket_type socket, SslPtr ssl);

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  socket_type& socket() noexcept { return socket_; }
  SSL* ssl() const noexcept { return ssl_.get(); }
  [[nodiscard]] bool is_tls() const noexcept { return ssl_ != nullptr; }

  /// Runs the TLS handshake in the role the SSL object was set to (accept or connect state).
  net::awaitable<error_code> handshake();

  /// From now on the TLS records of one write leave in one send(2): they gather in a buffer
  /// (`bytes`, the records of a whole write) and are flushed at the write's end, where each
  /// would otherwise be a send of its own, with a TCP segment and a wakeup of the reader. For
  /// streams, whose writes are large: idle connections must not hold that buffer. No effect
  /// without TLS.
  void coalesce_records(std::size_t bytes) noexcept;

  /// Half-close: sends close_notify (TLS) and a FIN; reading stays possible.
  void shutdown_send() noexcept;
  /// Closes the socket; pending operations complete with operation_aborted.
  void close() noexcept;

  // Without TLS the socket's own operations: a gather list goes out in one sendmsg(2) with
  // no copy, and no composed operation wraps the read.
  template <typename MutableBufferSequence, typename Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    if (!ssl_) {
      return socket_.async_read_some(buffers, std::forward<Token>(token));
    }
    return net::async_compose<Token, void(error_code, std::size_t)>(
        ReadOp{this, first_buffer(buffers)}, token, socket_);
  }

  template <typename ConstBufferSequence, typename Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    if (!ssl_) {
      return socket_.async_write_some(buffers, std::forward<Token>(token));
    }
    return net::async_compose<Token, void(error_code, std::size_t)>(
        WriteOp{this, gather(buffers)}, token, socket_);
  }

 private:
  // Either a view of the caller's single buffer or an owned coalesced copy of a gather list
  // (Beast hands over header, chunk size, body and CRLF separately; one TLS record each
  // would quadruple the record overhead of a small response).
  struct WriteData {
    net::const_buffer view;
    std::shared_ptr<char[]> owned;
  };

  template <typename Buffers>
  static net::mutable_buffer first_buffer(const Buffers& buffers) {
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
         ++it) {
      net::mutable_buffer b(*it);
      if (b.size() != 0) {
        return b;
      }
    }
    return {};
  }

  template <typename Buffers>
  WriteData gather(const Buffers& buffers) {
    constexpr std::size_t coalesce_limit = 16 * 1024;
    std::size_t count = 0;
    std::size_t total = 0;
    net::const_buffer first;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
         ++it) {
      net::const_buffer b(*it);
      if (b.size() == 0) {
        continue;
      }
      if (count++ == 0) {
        first = b;
      }
      total += b.size();
    }
    if (count <= 1) {
      return WriteData{first, nullptr};
    }
    const std::size_t size = std::min(total, coalesce_limit);
    std::shared_ptr<char[]> owned(new char[size]);
    const std::size_t copied = net::buffer_copy(net::buffer(owned.get(), size), buffers);
    return WriteData{net::const_buffer(owned.get(), copied), std::move(owned)};
  }

  enum class Want { done, read, write };
  // One non-blocking attempt; `n` receives bytes moved, `ec` a terminal error.
  Want try_read(net::mutable_buffer b, std::size_t& n, error_code& ec) noexcept;
  Want try_write(net::const_buffer b, std::size_t& n, error_code& ec) noexcept;
  // After coalesce_records: sends what the write left in the buffer.
  Want try_flush(error_code& ec) noexcept;
  [[nodiscard]] bool coalescing() const noexcept {
    return ssl_ && SSL_get_wbio(ssl_.get()) != SSL_get_rbio(ssl_.get());
  }
  // The answer of every operation on a closed stream (bad_descriptor).
  static Want closed(std::size_t& n, error_code& ec) noexcept;
  // What an SSL_read_ex/SSL_write_ex result `r` means for the operation.
  Want outcome(int r, std::size_t& n, error_code& ec) noexcept;

  // An operation that finds its bytes already there (OpenSSL holds a buffered record, the
  // socket takes the whole write) completes inside the call that started it, and so does the
  // next one its caller starts from the completion handler: Beast's read and write loops and
  // berth's coroutines then nest one frame set per operation. A 12 MiB body arriving faster
  // than it was consumed went 44,600 frames deep and overflowed the stack. So inline
  // completions nest at most max_inline_depth deep on a thread; past that, the completion is
  // posted and the stack unwinds. (Asio's own sockets never complete inline.)
  static constexpr int max_inline_depth = 8;
  static int& inline_depth() noexcept {
    thread_local int depth = 0;
    return depth;
  }

  template <typename Self>
  static void finish(Self& self, error_code ec, std::size_t n) {
    int& depth = inline_depth();
    if (depth < max_inline_depth) {
      ++depth;
      self.complete(ec, n);
      --depth;
      return;
    }
    auto executor = self.get_executor();
    net::post(executor, Deferred<Self>{std::move(self), ec, n});
  }

  template <typename Self>
  struct Deferred {
    Self self;
    error_code ec;
    std::size_t n;
    void operator()() { self.complete(ec, n); }
  };

  struct ReadOp {
    TlsStream* self_stream;
    net::mutable_buffer buffer;

    template <typename Self>
    void operator()(Self& self, error_code ec = {}, std::size_t = 0) {
      TlsStream& s = *self_stream;
      if (ec) {
        finish(self, ec, 0);
        return;
      }
      if (buffer.size() == 0) {
        finish(self, {}, 0);
        return;
      }
      std::size_t got = 0;
      switch (s.try_read(buffer, got, ec)) {
        case Want::done:
          finish(self, ec, got);
          return;
        case Want::read:
          s.socket_.async_wait(net::socket_base::wait_read, std::move(self));
          return;
        case Want::write:
          s.socket_.async_wait(net::socket_base::wait_write, std::move(self));
          return;
      }
    }
  };

  struct WriteOp {
    TlsStream* self_stream;
    WriteData data;
    // Coalescing: plaintext already taken by OpenSSL (one record per SSL_write_ex: partial
    // writes are on), and whether its records are now being flushed from the buffer.
    std::size_t written = 0;
    bool flushing = false;

    template <typename Self>
    void operator()(Self& self, error_code ec = {}, std::size_t = 0) {
      TlsStream& s = *self_stream;
      if (ec) {
        finish(self, ec, 0);
        return;
      }
      if (data.view.size() == 0) {
        finish(self, {}, 0);
        return;
      }
      while (!flushing) {
        std::size_t put = 0;
        const Want want = s.try_write(data.view + written, put, ec);
        if (want == Want::done) {
          if (ec || !s.coalescing()) {
            finish(self, ec, put);
            return;
          }
          written += put;
          flushing = written == data.view.size();
          continue;
        }
        if (written != 0) {
          flushing = true;  // what OpenSSL took leaves first; the rest is the next write's
          break;
        }
        s.socket_.async_wait(
            want == Want::read ? net::socket_base::wait_read : net::socket_base::wait_write,
            std::move(self));
        return;
      }
      if (s.try_flush(ec) == Want::done) {
        finish(self, ec, ec ? 0 : written);
        return;
      }
      s.socket_.async_wait(net::socket_base::wait_write, std::move(self));
    }
  };

  socket_type socket_;
  SslPtr ssl_;
};

}  // namespace berth::proxy
