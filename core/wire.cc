#include "core/wire.h"

#include <cstdint>
#include <cstring>

namespace braid {
namespace {

constexpr uint32_t kRequestsMagic = 0x42524551;   // "BREQ"
constexpr uint32_t kResponsesMagic = 0x42525350;  // "BRSP"
constexpr uint32_t kFailureMagic = 0x42455252;    // "BERR"

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    out_.append(raw, sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  template <typename T>
  void PutInts(const std::vector<T>& v) {
    Put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (T x : v) Put<T>(x);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  template <typename T>
  bool Get(T* value) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(value, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n = 0;
    if (!Get(&n) || in_.size() - pos_ < n) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool GetInts(std::vector<T>* v) {
    uint32_t n = 0;
    if (!Get(&n) || (in_.size() - pos_) / sizeof(T) < n) return false;
    v->resize(n);
    for (auto& x : *v) Get(&x);
    return true;
  }
  bool AtEnd() const { return pos_ == in_.size(); }

 private:
  const std::string& in_;
  size_t pos_ = 0;
};

void PutMeta(Writer* w, const RequestMeta& m) {
  w->PutString(m.name);
  w->Put<int32_t>(static_cast<int32_t>(m.collective));
  w->Put<int32_t>(static_cast<int32_t>(m.dtype));
  w->Put<int32_t>(static_cast<int32_t>(m.op));
  w->Put<int32_t>(m.root);
  w->Put<int32_t>(m.device);
  w->Put<double>(m.prescale);
  w->Put<double>(m.postscale);
  w->PutInts(m.shape);
  w->Put<int32_t>(static_cast<int32_t>(m.index_dtype));
  w->Put<int64_t>(m.pairs);
  w->Put<uint8_t>(m.dense_fallback ? 1 : 0);
  w->PutInts(m.send_to);
  w->PutInts(m.recv_from);
}

bool GetMeta(Reader* r, RequestMeta* m) {
  int32_t collective = 0, dtype = 0, op = 0, index_dtype = 0;
  uint8_t fallback = 0;
  if (!r->GetString(&m->name) || !r->Get(&collective) || !r->Get(&dtype) || !r->Get(&op) ||
      !r->Get(&m->root) || !r->Get(&m->device) || !r->Get(&m->prescale) || !r->Get(&m->postscale) ||
      !r->GetInts(&m->shape) || !r->Get(&index_dtype) || !r->Get(&m->pairs) || !r->Get(&fallback) ||
      !r->GetInts(&m->send_to) || !r->GetInts(&m->recv_from)) {
    return false;
  }
  if (collective < 0 || collective >= kNumCollectives || fallback > 1) return false;
  if (!IsValidDataType(dtype) || !IsValidReduceOp(op) || !IsValidDataType(index_dtype))
    return false;
  m->index_dtype = static_cast<DataType>(index_dtype);
  m->dense_fallback = fallback == 1;
  m->collective = static_cast<Collective>(collective);
  m->dtype = static_cast<DataType>(dtype);
  m->op = static_cast<ReduceOp>(op);
  return true;
}

Status Corrupt(const char* what) {
  return Internal(std::string("corrupt control message: bad ") + what);
}

}  // namespace

std::string EncodeRequests(const std::vector<RequestMeta>& requests) {
  Writer w;
  w.Put<uint32_t>(kRequestsMagic);
  w.Put<uint32_t>(static_cast<uint32_t>(requests.size()));
  for (const auto& m : requests) PutMeta(&w, m);
  return w.Take();
}

Status DecodeRequests(const std::string& bytes, std::vector<RequestMeta>* requests) {
  Reader r(bytes);
  uint32_t magic = 0, n = 0;
  if (!r.Get(&magic) || magic != kRequestsMagic || !r.Get(&n)) return Corrupt("request header");
  requests->clear();
  for (uint32_t i = 0; i < n; ++i) {
    RequestMeta m;
    if (!GetMeta(&r, &m)) return Corrupt("request");
    requests->push_back(std::move(m));
  }
  return r.AtEnd() ? Status::OK() : Corrupt("request list length");
}

std::string EncodeResponses(const std::vector<Response>& responses) {
  Writer w;
  w.Put<uint32_t>(kResponsesMagic);
  w.Put<uint32_t>(static_cast<uint32_t>(responses.size()));
  for (const auto& resp : responses) {
    PutMeta(&w, resp.meta);
    w.PutInts(resp.first_dims);
    w.PutInts(resp.devices);
    w.PutInts(resp.graph);
    w.Put<int32_t>(static_cast<int32_t>(resp.error_code));
    w.PutString(resp.error);
  }
  return w.Take();
}

std::string EncodeFailure(const Status& status) {
  Writer w;
  w.Put<uint32_t>(kFailureMagic);
  w.Put<int32_t>(static_cast<int32_t>(status.code()));
  w.PutString(status.message());
  return w.Take();
}

// Rank 0's reason for sending no responses, as the status to fail with.
static Status DecodeFailure(Reader* r) {
  int32_t code = 0;
  std::string message;
  if (!r->Get(&code) || !r->GetString(&message) || !r->AtEnd()) return Corrupt("failure notice");
  const auto status_code = static_cast<StatusCode>(code);
  if (status_code == StatusCode::kOk || std::strcmp(StatusCodeName(status_code), "UNKNOWN") == 0)
    return Corrupt("failure notice");
  return Status(status_code, message);
}

Status DecodeResponses(const std::string& bytes, std::vector<Response>* responses) {
  Reader r(bytes);
  uint32_t magic = 0, n = 0;
  const bool have_magic = r.Get(&magic);
  if (have_magic && magic == kFailureMagic) return DecodeFailure(&r);
  if (!have_magic || magic != kResponsesMagic || !r.Get(&n)) {
    return Corrupt("response header");
  }
  responses->clear();
  for (uint32_t i = 0; i < n; ++i) {
    Response resp;
    int32_t code = 0;
    if (!GetMeta(&r, &resp.meta) || !r.GetInts(&resp.first_dims) || !r.GetInts(&resp.devices) ||
        !r.GetInts(&resp.graph) || !r.Get(&code) || !r.GetString(&resp.error)) {
      return Corrupt("response");
    }
    resp.error_code = static_cast<StatusCode>(code);
    // Handles fail with this code and the C API returns it: it must be a known one.
    if (std::strcmp(StatusCodeName(resp.error_code), "UNKNOWN") == 0) {
      return Corrupt("response status code");
    }
    responses->push_back(std::move(resp));
  }
  return r.AtEnd() ? Status::OK() : Corrupt("response list length");
}

}  // namespace braid
