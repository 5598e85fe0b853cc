// module.cc: modules from PTX text, and kernel launches.
//
// cuModuleLoadData parses each .entry's .param list (and its static
// .shared size) from the PTX and pairs the entry with the host-compiled
// kernel of that name (kernels.cc), whose C signature must agree with it.
// cuLaunchKernel then checks a launch's arguments against that list: the
// `extra` parameter buffer must have exactly the layout's size, and
// kernelParams must hold one non-null pointer per parameter; every nonzero
// pointer parameter must lie in a live allocation when the kernel runs.
#include "driver.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace fake {
namespace {

std::mutex &kernel_lock = *new std::mutex; // the emulation runs one launch at a time

std::string trim(const std::string &s) {
	std::size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r,");
	return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

struct Entry {
	std::string name;
	std::vector<Param> params;
	std::size_t static_shared = 0;
	std::vector<std::string> body; // the instructions, trimmed
};

// operands splits "op a, [b+4], {c, d};" into the opcode and its operands
// (brackets and braces kept as part of their operand).
std::vector<std::string> operands(const std::string &ins, std::string *opcode) {
	std::string t = ins;
	if (!t.empty() && t[0] == '@') // a predicate guard: "@%p1 bra L;"
		t = trim(t.substr(t.find_first_of(" \t") == std::string::npos ? t.size() : t.find_first_of(" \t")));
	std::size_t sp = t.find_first_of(" \t");
	*opcode = t.substr(0, sp);
	std::vector<std::string> ops;
	if (sp == std::string::npos)
		return ops;
	std::string cur;
	int depth = 0;
	for (char c : t.substr(sp)) {
		if (c == '[' || c == '{')
			depth++;
		if (c == ']' || c == '}')
			depth--;
		if ((c == ',' && depth == 0) || c == ';') {
			ops.push_back(trim(cur));
			cur.clear();
			if (c == ';')
				break;
			continue;
		}
		cur += c;
	}
	if (!trim(cur).empty())
		ops.push_back(trim(cur));
	return ops;
}

// registers lists the %registers an operand names.
std::vector<std::string> registers(const std::string &op) {
	std::vector<std::string> regs;
	for (std::size_t i = op.find('%'); i != std::string::npos; i = op.find('%', i + 1)) {
		std::size_t e = i + 1;
		while (e < op.size() && (std::isalnum((unsigned char)op[e]) || op[e] == '_'))
			e++;
		regs.push_back(op.substr(i, e - i));
	}
	return regs;
}

// written finds which pointer parameters an entry may write through: a
// register loaded from a parameter taints every register computed from it
// (to a fixpoint, for loops), except through a load from memory; a store,
// atomic or reduction whose address is tainted by parameter i writes it.
// Pointer parameters it cannot see written are read-only for the race
// check (two readers on different streams do not race).
std::vector<bool> written(const Entry &e) {
	std::map<std::string, std::uint64_t> taint; // register -> parameter bits
	std::uint64_t out = 0;
	for (bool grew = true; grew;) {
		grew = false;
		for (const std::string &ins : e.body) {
			std::string opcode;
			std::vector<std::string> ops = operands(ins, &opcode);
			if (ops.empty() || opcode[0] == '.')
				continue;
			auto bits = [&](const std::string &op) {
				std::uint64_t b = 0;
				for (const std::string &r : registers(op))
					b |= taint[r];
				return b;
			};
			const bool store = opcode.rfind("st.", 0) == 0, rmw = opcode.rfind("atom.", 0) == 0 ||
			                                                          opcode.rfind("red.", 0) == 0;
			const bool local = opcode.find(".shared") != std::string::npos ||
			                   opcode.find(".local") != std::string::npos || opcode.find(".param") != std::string::npos;
			if (store || rmw) {
				if (!local)
					for (const std::string &op : ops)
						if (op[0] == '[')
							out |= bits(op);
				if (store)
					continue; // a store has no destination register
			}
			std::uint64_t b = 0;
			if (opcode.rfind("ld.param", 0) == 0) {
				for (std::size_t i = 0; i < e.params.size() && i < 64; i++)
					if (ops.size() > 1 && ops[1] == "[" + e.params[i].name + "]")
						b = 1ull << i;
			} else if (opcode.rfind("ld.", 0) != 0 && !rmw) {
				for (std::size_t i = 1; i < ops.size(); i++)
					b |= bits(ops[i]);
			}
			for (const std::string &r : registers(ops[0]))
				if ((taint[r] | b) != taint[r])
					taint[r] |= b, grew = true;
		}
	}
	std::vector<bool> w(e.params.size());
	for (std::size_t i = 0; i < w.size(); i++)
		w[i] = i >= 64 || (out >> i & 1);
	return w;
}

// parse_param reads ".param .u64 NAME" or ".param .align 8 .b8 NAME[12]".
bool parse_param(const std::string &line, Param *p) {
	std::istringstream in(line);
	std::string kw, type;
	in >> kw >> type;
	if (kw != ".param")
		return false;
	std::size_t align = 0;
	if (type == ".align") {
		in >> align >> type;
		if (!align)
			return false;
	}
	std::string name;
	in >> name;
	if (name.empty())
		return false;
	static const struct {
		const char *type;
		std::size_t size;
	} scalars[] = {{".u64", 8}, {".s64", 8}, {".b64", 8}, {".f64", 8}, {".u32", 4}, {".s32", 4}, {".b32", 4},
	               {".f32", 4}, {".u16", 2}, {".s16", 2}, {".b16", 2}, {".u8", 1},  {".s8", 1},  {".b8", 1}};
	std::size_t elem = 0;
	for (auto &s : scalars)
		if (type == s.type)
			elem = s.size;
	if (!elem)
		return false;
	std::size_t count = 1;
	if (std::size_t lb = name.find('['); lb != std::string::npos) {
		count = std::strtoul(name.c_str() + lb + 1, nullptr, 10);
		name = name.substr(0, lb);
		if (!count)
			return false;
	}
	p->name = name;
	p->type = type.substr(1) + (count > 1 ? "[" + std::to_string(count) + "]" : "");
	p->size = elem * count;
	p->align = align ? align : elem;
	return true;
}

// parse reads the entries of a PTX module; on malformed text it returns
// false with the line and the problem in *err.
bool parse(const char *text, std::vector<Entry> *entries, std::string *err) {
	std::istringstream in(text);
	std::string line;
	int n = 0;
	bool version = false;
	Entry *cur = nullptr;
	enum { Outside, Params, Body } state = Outside;
	int depth = 0;
	auto bad = [&](const std::string &why) {
		*err = "line " + std::to_string(n) + ": " + why + ": " + trim(line);
		return false;
	};
	while (std::getline(in, line)) {
		n++;
		std::string t = trim(line);
		if (t.empty() || t.rfind("//", 0) == 0)
			continue;
		switch (state) {
		case Outside:
			if (t.rfind(".version", 0) == 0)
				version = true;
			if (std::size_t e = t.find(".entry"); e != std::string::npos) {
				if (!version)
					return bad(".entry before .version");
				std::string rest = trim(t.substr(e + 6));
				std::size_t lp = rest.find('(');
				if (lp == std::string::npos || lp == 0)
					return bad("an .entry without a name and '('");
				entries->push_back(Entry{rest.substr(0, lp), {}, 0});
				cur = &entries->back();
				state = rest.find(')') != std::string::npos ? Body : Params;
				depth = 0;
			}
			break;
		case Params:
			if (t[0] == ')') {
				state = Body;
				break;
			}
			{
				Param p;
				std::string decl = t;
				bool closes = false;
				if (std::size_t rp = decl.find(')'); rp != std::string::npos)
					decl = trim(decl.substr(0, rp)), closes = true;
				if (!parse_param(decl, &p))
					return bad("not a .param declaration the fake understands");
				cur->params.push_back(p);
				if (closes)
					state = Body;
			}
			break;
		case Body:
			if (t != "{" && t != "}")
				cur->body.push_back(t);
			if (t.rfind(".shared", 0) == 0) {
				Param p;
				if (!parse_param(".param" + t.substr(7), &p))
					return bad("not a .shared declaration the fake understands");
				cur->static_shared = (cur->static_shared + p.align - 1) / p.align * p.align + p.size;
			}
			for (char c : t) {
				if (c == '{')
					depth++;
				if (c == '}' && --depth == 0)
					state = Outside;
			}
			break;
		}
	}
	if (!version)
		return *err = "no .version directive: not PTX", false;
	if (state != Outside)
		return *err = "the text ends inside the .entry " + cur->name, false;
	return true;
}

std::string param_list(const CUfunc_st *f) {
	std::string s = f->name + "(";
	for (std::size_t i = 0; i < f->params.size(); i++)
		s += (i ? ", " : "") + f->params[i].type;
	return s + ")";
}

// layout gives each parameter its offset, naturally aligned, and returns
// the buffer's size.
std::size_t layout(std::vector<Param> &params) {
	std::size_t off = 0;
	for (Param &p : params) {
		off = (off + p.align - 1) / p.align * p.align;
		p.offset = off;
		off += p.size;
	}
	return off;
}

CUresult load(const char *call, CUmodule *pm, const void *image, char *log, std::size_t logsize) {
	auto report = [&](CUresult code, const std::string &msg) {
		if (log && logsize)
			std::snprintf(log, logsize, "%s", msg.c_str());
		return fail(call, code, msg);
	};
	if (!pm || !image)
		return fail(call, CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter(call, &ctx))
		return r;
	const char *text = (const char *)image;
	if (!std::memcmp(text, "\x7f" "ELF", 4) || !std::memcmp(text, "\x50\xed\x55\xba", 4))
		return report(CUDA_ERROR_NOT_SUPPORTED, "a cubin or fatbin image: the fake loads PTX text only");
	std::vector<Entry> entries;
	std::string err;
	if (!parse(text, &entries, &err))
		return report(CUDA_ERROR_INVALID_PTX, "ptx: " + err);
	CUmod_st *m = new CUmod_st{ctx};
	for (Entry &e : entries) {
		const Kernel *k = find_kernel(e.name);
		if (!k)
			return report(CUDA_ERROR_NOT_FOUND,
			              "the PTX entry " + e.name + " has no host-compiled kernel in the fake (kernels/fakecuda/kernels.cc)");
		CUfunc_st *f = new CUfunc_st{m, e.name, e.params, 0, e.static_shared, k, written(e)};
		f->param_bytes = layout(f->params);
		bool agree = (int)f->params.size() == k->arity;
		for (int i = 0; agree && i < k->arity; i++)
			agree = f->params[i].size == k->sizes[i] && (f->params[i].type == "u64") == k->pointers[i];
		if (!agree)
			return report(CUDA_ERROR_INVALID_PTX, "the PTX entry " + param_list(f) + " does not match the C signature of " +
			                                          e.name + " in kernels/*.cu (" + std::to_string(k->arity) +
			                                          " parameters): the PTX is stale, run make kernels");
		if (f->static_shared > 48u << 10)
			return report(CUDA_ERROR_INVALID_PTX, e.name + " declares " + std::to_string(f->static_shared) +
			                                          " bytes of .shared, more than 48 KiB");
		m->funcs[e.name] = f;
	}
	std::lock_guard<std::mutex> l(mu);
	remember(m);
	for (auto &[name, f] : m->funcs)
		remember(f);
	*pm = m;
	return CUDA_SUCCESS;
}

CUresult check_module(const char *call, CUmodule m, CUctx_st *ctx) {
	if (!known(m) || m->unloaded)
		return fail(call, CUDA_ERROR_INVALID_HANDLE, "not a loaded module");
	if (m->ctx != ctx)
		return fail(call, CUDA_ERROR_INVALID_CONTEXT,
		            "the module was loaded in context " + std::to_string(m->ctx->serial) +
		                ", but this thread's current context is " + std::to_string(ctx->serial));
	return CUDA_SUCCESS;
}

} // namespace
} // namespace fake

using namespace fake;

extern "C" {

CUresult cuModuleLoadData(CUmodule *pm, const void *image) { return load(__func__, pm, image, nullptr, 0); }

CUresult cuModuleLoadDataEx(CUmodule *pm, const void *image, unsigned int n, CUjit_option *options, void **values) {
	char *log = nullptr;
	std::size_t logsize = 0;
	for (unsigned i = 0; i < n; i++) {
		if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
			log = (char *)values[i];
		else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
			logsize = (std::size_t)(std::uintptr_t)values[i];
	}
	return load(__func__, pm, image, log, logsize);
}

CUresult cuModuleGetFunction(CUfunction *pf, CUmodule m, const char *name) {
	if (!pf || !name)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	if (CUresult r = check_module(__func__, m, ctx))
		return r;
	auto it = m->funcs.find(name);
	if (it == m->funcs.end())
		return fail(__func__, CUDA_ERROR_NOT_FOUND, std::string("the module has no .entry ") + name);
	*pf = it->second;
	return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule m) {
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	if (CUresult r = check_module(__func__, m, ctx))
		return r;
	m->unloaded = true; // launches already issued keep their kernel
	return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int *v, CUfunction_attribute attr, CUfunction f) {
	if (!v)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	if (!known(f))
		return fail(__func__, CUDA_ERROR_INVALID_HANDLE, "not a function handle");
	switch (attr) {
	case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
	case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *v = (int)f->static_shared; break;
	case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *v = 0; break;
	case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *v = 0; break;
	case CU_FUNC_ATTRIBUTE_NUM_REGS: *v = 32; break;
	case CU_FUNC_ATTRIBUTE_PTX_VERSION: *v = 78; break;
	case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *v = 90; break;
	default:
		return fail(__func__, CUDA_ERROR_INVALID_VALUE,
		            "function attribute " + std::to_string((int)attr) + " is not answered by the fake");
	}
	return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                        unsigned int by, unsigned int bz, unsigned int shared, CUstream s, void **params,
                        void **extra) {
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	{
		std::lock_guard<std::mutex> l(mu);
		if (!known(f))
			return fail(__func__, CUDA_ERROR_INVALID_HANDLE, "not a function handle");
		if (CUresult r = check_module(__func__, f->mod, ctx))
			return r;
	}
	const std::string sig = param_list(f);
	auto bad = [&](CUresult code, const std::string &why) { return fail("cuLaunchKernel", code, sig + ": " + why); };
	const std::string dims = "grid (" + std::to_string(gx) + "," + std::to_string(gy) + "," + std::to_string(gz) +
	                         "), block (" + std::to_string(bx) + "," + std::to_string(by) + "," + std::to_string(bz) + ")";
	if (!gx || !gy || !gz || !bx || !by || !bz)
		return bad(CUDA_ERROR_INVALID_VALUE, dims + ": a dimension is 0");
	if (bx > 1024 || by > 1024 || bz > 64 || (std::uint64_t)bx * by * bz > 1024)
		return bad(CUDA_ERROR_INVALID_VALUE, dims + ": a block holds at most 1024 threads (x, y ≤ 1024, z ≤ 64)");
	if (gx > 2147483647u || gy > 65535 || gz > 65535)
		return bad(CUDA_ERROR_INVALID_VALUE, dims + ": beyond the grid limits (2^31-1, 65535, 65535)");
	if (shared + f->static_shared > 48u << 10)
		return bad(CUDA_ERROR_INVALID_VALUE, std::to_string(shared) + " bytes of dynamic shared memory + " +
		                                         std::to_string(f->static_shared) + " static exceed 48 KiB");
	if (shared)
		return bad(CUDA_ERROR_NOT_SUPPORTED, "dynamic shared memory is not emulated by the fake");
	auto buf = std::make_shared<std::vector<unsigned char>>(f->param_bytes);
	if (params && extra)
		return bad(CUDA_ERROR_INVALID_VALUE, "both kernelParams and extra given");
	if (extra) {
		void *ptr = nullptr;
		std::size_t *size = nullptr;
		for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
			if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
				ptr = extra[i + 1];
			else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
				size = (std::size_t *)extra[i + 1];
			else
				return bad(CUDA_ERROR_INVALID_VALUE, "unknown key in extra");
		}
		if (!ptr || !size)
			return bad(CUDA_ERROR_INVALID_VALUE, "extra lacks CU_LAUNCH_PARAM_BUFFER_POINTER or _SIZE");
		// Exactly the layout's size, without trailing padding: a padded
		// size would let a u32 passed as 8 bytes through for relu's
		// (u64, u64, u32), 20 bytes, against (u64, u64, u64), 24.
		if (*size != f->param_bytes)
			return bad(CUDA_ERROR_INVALID_VALUE, "the parameter buffer holds " + std::to_string(*size) +
			                                         " bytes, but the PTX parameters take " +
			                                         std::to_string(f->param_bytes) +
			                                         " (u64 aligned to 8, u32 and f32 to 4): an argument is missing, "
			                                         "extra or of the wrong size");
		std::memcpy(buf->data(), ptr, f->param_bytes);
	} else {
		if (!f->params.empty() && !params)
			return bad(CUDA_ERROR_INVALID_VALUE, "no kernelParams and no extra for " +
			                                         std::to_string(f->params.size()) + " parameters");
		for (std::size_t i = 0; i < f->params.size(); i++) {
			if (!params[i])
				return bad(CUDA_ERROR_INVALID_VALUE, "kernelParams[" + std::to_string(i) + "] is null");
			std::memcpy(buf->data() + f->params[i].offset, params[i], f->params[i].size);
		}
	}
	Op op;
	op.what = "kernel " + f->name + " (" + dims + ")";
	auto offsets = std::make_shared<std::vector<std::size_t>>();
	for (std::size_t i = 0; i < f->params.size(); i++) {
		offsets->push_back(f->params[i].offset);
		if (f->kernel->pointers[i]) {
			std::uint64_t p;
			std::memcpy(&p, buf->data() + f->params[i].offset, 8);
			if (p) // kernels take a null pointer for "none"
				op.access.push_back(
				    Access{p, 0, f->writes[i], "parameter " + std::to_string(i) + " (" + f->params[i].name + ")"});
		}
	}
	const Kernel *k = f->kernel;
	const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
	auto name = std::make_shared<std::string>(op.what);
	op.run = [k, buf, offsets, name, grid0 = grid[0], grid1 = grid[1], grid2 = grid[2], b0 = block[0], b1 = block[1],
	          b2 = block[2]] {
		const unsigned g[3] = {grid0, grid1, grid2}, b[3] = {b0, b1, b2};
		std::lock_guard<std::mutex> l(kernel_lock);
		set_running_kernel(name->c_str());
		static std::uint64_t launches; // under kernel_lock
		std::string fault = run_kernel(*k, g, b, buf->data(), offsets->data(), settings().seed * 1000003u + launches++);
		set_running_kernel(nullptr);
		if (!fault.empty())
			return Fault{CUDA_ERROR_LAUNCH_FAILED, *name + ": " + fault};
		return Fault{};
	};
	return submit(__func__, ctx, s, std::move(op));
}

} // extern "C"
