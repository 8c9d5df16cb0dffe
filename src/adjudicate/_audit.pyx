"""The audit pass (adjudicate.audit): every rule of the rules file over claims in
settlement order, member by member, in one compiled loop.

Claims arrive sorted by (member, settle_date, claim_id) as encode.py leaves them
for the settlement kernel, so every rule is a bounded scan around a claim inside
its member's run: backwards while the settle date can still match, forwards only
over claims settled the same day (and, for an inpatient duplicate, over the
member's later stays). Flags go to caller-owned buffers; when they are full the
pass keeps counting and returns the count it needed, and the caller retries.
"""
from adjudicate._hashing cimport mix64
from libc.string cimport memcmp
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t

# rule codes: the order of adjudicate.audit.rules.RULES
cdef enum:
    R_READMIT = 0
    R_OVERLAP = 1
    R_DUP = 2
    R_BED = 3
    R_LARGE = 4
    R_NONDRUG = 5
    R_FREQ = 6
    R_O2I = 7

# units of the measure column (adjudicate.audit.flags.UNITS)
cdef enum:
    U_DAYS = 0
    U_LINES = 1
    U_BP = 2
    U_FEN = 3
    U_QTY = 4
    U_CLAIMS = 5

# parameter slots (adjudicate.audit.flags.params)
cdef enum:
    P_ENABLED = 0          # bit r: rule r enabled
    P_READMIT_DAYS = 1
    P_SAME_DX = 2
    P_INSIDE_SETTINGS = 3  # bit s: setting s
    P_BED_DAYS = 4
    P_BED_SHARE_BP = 5
    P_LARGE_SETTINGS = 6
    P_LARGE_AMOUNT = 7
    P_LARGE_QTY = 8        # in quantity units (millionths), 0 = off
    P_FREQ_DAYS = 9
    P_FREQ_MAX = 10
    P_O2I_DAYS = 11
    P_O2I_SETTINGS = 12
    P_KIND_KNOWN = 13      # the catalogue has item_kind
    P_NONDRUG_KINDS = 14   # bit k: item kind k is not sold by pharmacies

    # settings and item kinds as schema.SETTINGS and schema.ITEM_KINDS number them (checked in audit/flags.py)
    INPATIENT = 0
    PHARMACY = 3
    K_DRUG = 0
    K_FACILITY = 2
    NO_GAP = -2147483648


cdef inline bint _id_less(int64_t a, int64_t b, const int64_t[::1] code, const int64_t[::1] off,
                          const uint8_t[::1] data) noexcept nogil:
    """claim a's id < claim b's id, as bytes (contract §3)."""
    cdef int64_t ca = code[a], cb = code[b]
    cdef int64_t la = off[ca + 1] - off[ca], lb = off[cb + 1] - off[cb]
    cdef int64_t n = la if la < lb else lb
    cdef int c = 0
    if n > 0:
        c = memcmp(&data[off[ca]], &data[off[cb]], <size_t>n)
    if c != 0:
        return c < 0
    return la < lb


cdef inline bint _prev_stay(int64_t j, int64_t i, const int64_t[::1] provider, const int8_t[::1] setting,
                            const int32_t[::1] admit, const int32_t[::1] settle, const int64_t[::1] diag,
                            int64_t same_dx, const int64_t[::1] code, const int64_t[::1] off,
                            const uint8_t[::1] data) noexcept nogil:
    """Stay j can be the stay before inpatient claim i at its provider: discharged by i's admission,
    admitted before it (same day: the smaller claim_id)."""
    return (setting[j] == INPATIENT and provider[j] == provider[i] and settle[j] <= admit[i]
            and (admit[j] < admit[i] or (admit[j] == admit[i] and _id_less(j, i, code, off, data)))
            and (same_dx == 0 or (diag[j] >= 0 and diag[j] == diag[i])))


cdef inline bint _later_stay(int64_t j, int64_t b, const int32_t[::1] admit, const int32_t[::1] settle,
                             const int64_t[::1] code, const int64_t[::1] off, const uint8_t[::1] data) noexcept nogil:
    """Stay j ends later than stay b: by discharge, then admission, then claim_id."""
    if settle[j] != settle[b]:
        return settle[j] > settle[b]
    if admit[j] != admit[b]:
        return admit[j] > admit[b]
    return _id_less(b, j, code, off, data)



cdef inline bint _same_lines(int64_t i, int64_t j, const int64_t[::1] line_start, const int64_t[::1] item,
                             const int64_t[::1] qty, const int64_t[::1] amount) noexcept nogil:
    """The two claims' lines are equal as multisets of (item, quantity, amount)."""
    cdef int64_t a, b, ci, cj
    for a in range(line_start[i], line_start[i + 1]):
        ci = 0
        cj = 0
        for b in range(line_start[i], line_start[i + 1]):
            if item[b] == item[a] and qty[b] == qty[a] and amount[b] == amount[a]:
                ci += 1
        for b in range(line_start[j], line_start[j + 1]):
            if item[b] == item[a] and qty[b] == qty[a] and amount[b] == amount[a]:
                cj += 1
        if ci != cj:
            return False
    return True


cdef inline bint _share_item(int64_t i, int64_t j, const int64_t[::1] line_start,
                             const int64_t[::1] item) noexcept nogil:
    cdef int64_t a, b
    for a in range(line_start[i], line_start[i + 1]):
        for b in range(line_start[j], line_start[j + 1]):
            if item[a] == item[b]:
                return True
    return False


cdef inline void _emit(int64_t* n, int64_t cap, int64_t claim, int64_t rule, int64_t other, int64_t gap,
                       int64_t measure, int64_t unit, int64_t amount, int64_t[:, ::1] out) noexcept nogil:
    cdef int64_t k = n[0]
    if k < cap:
        out[k, 0] = claim
        out[k, 1] = rule
        out[k, 2] = other
        out[k, 3] = gap
        out[k, 4] = measure
        out[k, 5] = amount
        out[k, 6] = unit
    n[0] = k + 1


def flag_claims(const int64_t[::1] member, const int64_t[::1] provider, const int8_t[::1] setting,
                const int32_t[::1] admit, const int32_t[::1] settle, const int64_t[::1] diag,
                const int64_t[::1] total, const int64_t[::1] line_start,
                const int64_t[::1] item, const int64_t[::1] qty, const int64_t[::1] amount,
                const int8_t[::1] kind, const int64_t[::1] claim_code, const int64_t[::1] id_off,
                const uint8_t[::1] id_data, const int64_t[::1] p, int64_t lo, int64_t hi,
                uint64_t[::1] lh, int64_t[:, ::1] out) -> int:
    """Flag claims [lo, hi) (whole members). Each row of ``out``: claim position,
    rule code, evidence claim position (-1 none), gap in days (NO_GAP none),
    a measure, an amount in fen, the measure's unit. Returns the number of flags (may exceed the
    buffer: then call again with a larger one). ``lh`` is scratch of length hi - lo."""
    cdef int64_t cap = out.shape[0]
    cdef int64_t n = 0
    cdef int64_t en = p[P_ENABLED]
    cdef int64_t s, e, i, j, best, nl, k, cnt, first, a
    cdef int64_t v, facility, sum_amt, qmax, qamt
    cdef uint64_t h
    cdef int32_t lim
    with nogil:
        # per-claim line hash (``lh``, caller's scratch of hi - lo), for the duplicate pre-check
        for i in range(lo, hi):
            h = 0
            for a in range(line_start[i], line_start[i + 1]):
                h += mix64(<uint64_t>item[a] * 0x9e3779b97f4a7c15ULL ^ mix64(<uint64_t>qty[a] + 0x632be59bd9b4e019ULL)
                          ^ (mix64(<uint64_t>amount[a]) << 1))
            lh[i - lo] = h
        s = lo
        while s < hi:
            e = s + 1
            while e < hi and member[e] == member[s]:
                e += 1
            for i in range(s, e):
                # ---------------------------------------------------------- inpatient
                if setting[i] == INPATIENT:
                    if en & (1 << R_READMIT):
                        # the previous stay: discharged on or before this admission (so settled at most
                        # on the admission day: before i in order, or after it on the same day)
                        best = -1
                        lim = admit[i] - <int32_t>p[P_READMIT_DAYS]
                        j = i - 1
                        while j >= s and settle[j] >= lim:
                            if _prev_stay(j, i, provider, setting, admit, settle, diag, p[P_SAME_DX], claim_code,
                                          id_off, id_data) and (best < 0 or _later_stay(j, best, admit, settle,
                                                                                         claim_code, id_off, id_data)):
                                best = j
                            j -= 1
                        j = i + 1
                        while j < e and settle[j] <= admit[i]:
                            if _prev_stay(j, i, provider, setting, admit, settle, diag, p[P_SAME_DX], claim_code,
                                          id_off, id_data) and (best < 0 or _later_stay(j, best, admit, settle,
                                                                                         claim_code, id_off, id_data)):
                                best = j
                            j += 1
                        if best >= 0:
                            _emit(&n, cap, i, R_READMIT, best, admit[i] - settle[best], admit[i] - settle[best],
                                  U_DAYS, total[best], out)
                    if en & (1 << R_OVERLAP):
                        # every claim settled inside (admit, discharge]: stays that end during this one,
                        # and claims of other settings on the days strictly inside it
                        j = i - 1
                        while j >= s and settle[j] > admit[i]:
                            if provider[j] != provider[i]:
                                if setting[j] == INPATIENT:
                                    if admit[j] < settle[i]:
                                        v = (settle[j] if settle[j] < settle[i] else settle[i]) - \
                                            (admit[j] if admit[j] > admit[i] else admit[i])
                                        _emit(&n, cap, i, R_OVERLAP, j, v, v, U_DAYS, total[j], out)
                                        _emit(&n, cap, j, R_OVERLAP, i, v, v, U_DAYS, total[i], out)
                                elif (p[P_INSIDE_SETTINGS] >> setting[j]) & 1 and settle[j] < settle[i]:
                                    _emit(&n, cap, j, R_OVERLAP, i, settle[j] - admit[i], settle[j] - admit[i],
                                          U_DAYS, total[i], out)
                            j -= 1
                    if en & (1 << R_BED) and p[P_KIND_KNOWN] and settle[i] - admit[i] >= p[P_BED_DAYS] \
                            and total[i] > 0:
                        facility = 0
                        for a in range(line_start[i], line_start[i + 1]):
                            if kind[a] == K_FACILITY:
                                facility += amount[a]
                        if facility > 0 and facility * 10000 >= p[P_BED_SHARE_BP] * total[i]:
                            _emit(&n, cap, i, R_BED, -1, settle[i] - admit[i], facility * 10000 // total[i],
                                  U_BP, facility, out)
                    if en & (1 << R_O2I):
                        best = -1
                        lim = admit[i] - <int32_t>p[P_O2I_DAYS]
                        j = i - 1
                        while j >= s and settle[j] >= lim:
                            if ((p[P_O2I_SETTINGS] >> setting[j]) & 1 and provider[j] == provider[i]
                                    and settle[j] <= admit[i] and _share_item(i, j, line_start, item)):
                                if best < 0 or settle[j] > settle[best] or (settle[j] == settle[best] and
                                                                            _id_less(best, j, claim_code, id_off, id_data)):
                                    best = j
                            j -= 1
                        j = i + 1
                        while j < e and settle[j] == admit[i]:
                            if ((p[P_O2I_SETTINGS] >> setting[j]) & 1 and provider[j] == provider[i]
                                    and _share_item(i, j, line_start, item)):
                                if best < 0 or settle[best] < settle[j] or _id_less(best, j, claim_code, id_off, id_data):
                                    best = j
                            j += 1
                        if best >= 0:
                            _emit(&n, cap, i, R_O2I, best, admit[i] - settle[best], admit[i] - settle[best],
                                  U_DAYS, total[best], out)
                # ---------------------------------------------------------- every setting
                if en & (1 << R_DUP):
                    best = -1
                    nl = line_start[i + 1] - line_start[i]
                    j = i - 1
                    while j >= s and settle[j] >= admit[i]:
                        if (setting[j] == setting[i] and admit[j] == admit[i] and provider[j] == provider[i]
                                and total[j] == total[i] and lh[j - lo] == lh[i - lo]
                                and line_start[j + 1] - line_start[j] == nl
                                and _same_lines(i, j, line_start, item, qty, amount)):
                            if best < 0 or _id_less(j, best, claim_code, id_off, id_data):
                                best = j
                        j -= 1
                    j = i + 1
                    while j < e and (setting[i] == INPATIENT or settle[j] == settle[i]):
                        if (setting[j] == setting[i] and admit[j] == admit[i] and provider[j] == provider[i]
                                and total[j] == total[i] and lh[j - lo] == lh[i - lo]
                                and line_start[j + 1] - line_start[j] == nl
                                and _same_lines(i, j, line_start, item, qty, amount)):
                            if best < 0 or _id_less(j, best, claim_code, id_off, id_data):
                                best = j
                        j += 1
                    if best >= 0 and _id_less(best, i, claim_code, id_off, id_data):
                        _emit(&n, cap, i, R_DUP, best, 0, line_start[i + 1] - line_start[i], U_LINES, total[best], out)
                if setting[i] != INPATIENT and en & (1 << R_LARGE) and (p[P_LARGE_SETTINGS] >> setting[i]) & 1:
                    if total[i] > p[P_LARGE_AMOUNT]:
                        _emit(&n, cap, i, R_LARGE, -1, NO_GAP, total[i], U_FEN, total[i], out)
                    elif p[P_LARGE_QTY] > 0:
                        qmax = -1
                        qamt = 0
                        for a in range(line_start[i], line_start[i + 1]):
                            if (p[P_KIND_KNOWN] == 0 or kind[a] == K_DRUG) and qty[a] > p[P_LARGE_QTY] \
                                    and qty[a] > qmax:
                                qmax = qty[a]
                                qamt = amount[a]
                        if qmax >= 0:
                            _emit(&n, cap, i, R_LARGE, -1, NO_GAP, qmax, U_QTY, qamt, out)
                if setting[i] == PHARMACY:
                    if en & (1 << R_NONDRUG) and p[P_KIND_KNOWN]:
                        cnt = 0
                        sum_amt = 0
                        for a in range(line_start[i], line_start[i + 1]):
                            if kind[a] >= 0 and (p[P_NONDRUG_KINDS] >> kind[a]) & 1:
                                cnt += 1
                                sum_amt += amount[a]
                        if cnt > 0:
                            _emit(&n, cap, i, R_NONDRUG, -1, NO_GAP, cnt, U_LINES, sum_amt, out)
                    if en & (1 << R_FREQ):
                        # purchases in the window_days days ending on this one, up to this claim
                        lim = settle[i] - <int32_t>p[P_FREQ_DAYS] + 1
                        cnt = 0
                        first = i
                        j = i
                        while j >= s and settle[j] >= lim:
                            if setting[j] == PHARMACY:
                                cnt += 1
                                first = j
                            j -= 1
                        if cnt > p[P_FREQ_MAX]:
                            _emit(&n, cap, i, R_FREQ, first, settle[i] - settle[first], cnt, U_CLAIMS, total[first], out)
            s = e
    return n


def provider_year_sums(const int64_t[::1] group, const int64_t[::1] member, const int8_t[::1] setting,
                       const int64_t[::1] total, const int64_t[::1] fund, const int64_t[::1] self_pay,
                       const int64_t[::1] los, const int64_t[::1] drug, const uint8_t[::1] readmit,
                       int64_t[:, ::1] out) -> None:
    """Exact sums per (provider, year) group for the indicators, in one pass over claims in
    settlement order. Columns of ``out`` (zeroed by the caller): claims, admissions, outpatient
    visits, inpatient total, inpatient fund, outpatient total, outpatient fund, bed days, self-pay,
    total, inpatient drug amount, readmissions, distinct members (claims come in member order, so
    a member is new to a group when it differs from the group's last one)."""
    cdef Py_ssize_t i, n = group.shape[0]
    cdef int64_t g
    cdef int8_t s
    last_arr = __import__("numpy").full(out.shape[0], -1, dtype="int64")
    cdef int64_t[::1] last = last_arr
    with nogil:
        for i in range(n):
            g = group[i]
            s = setting[i]
            out[g, 0] += 1
            if s == INPATIENT:
                out[g, 1] += 1
                out[g, 3] += total[i]
                out[g, 4] += fund[i]
                out[g, 7] += los[i]
                out[g, 10] += drug[i]
                out[g, 11] += readmit[i]
            elif s == 1 or s == 2:  # outpatient, special_outpatient (schema.SETTINGS)
                out[g, 2] += 1
                out[g, 5] += total[i]
                out[g, 6] += fund[i]
            out[g, 8] += self_pay[i]
            out[g, 9] += total[i]
            if last[g] != member[i]:
                last[g] = member[i]
                out[g, 12] += 1
