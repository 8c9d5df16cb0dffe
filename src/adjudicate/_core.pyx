"""The compiled kernel: line split, claim settlement, allocation to lines.

Everything here works on flat int64 arrays: money in fen, ratios in basis
points (bp, 1/10000), the policy compiled by ``policy.compile_policy`` into
small tables. Products of money and ratios are taken in 128-bit integers and
rounded once, half away from zero (contract §1). No Python object is touched
per line or per claim, and the GIL is released, so callers may run disjoint
member ranges on several threads.

The layout of the tables shared with Python (the block table ``B``, the
claim sums, the output columns) is defined once, in ``_core.pxd``.
"""
from libc.stdlib cimport malloc, calloc, realloc, free, qsort
from libc.stdint cimport int64_t, int32_t, int16_t, int8_t, uint8_t, uint64_t, INT64_MIN
from adjudicate._hashing cimport hash_bytes
from libc.string cimport memcmp, memcpy, memmove, memset

import numpy as np

cdef extern from *:
    ctypedef long long int128 "__int128"
    void prefetch "__builtin_prefetch" (const void*) nogil

ctypedef fused index_t:  # positions and rows: int32 where they fit (half the bytes per line)
    int32_t
    int64_t


cdef enum:
    NCLS = SUM_ELIGIBLE_SUPPLEMENTARY - SUM_ELIGIBLE_A + 1  # classes with eligible amounts: A, B, special, supplementary
    NSUMS = SUM_ELIGIBLE_SUPPLEMENTARY + 1  # columns of claim_sums
    BLOCK = 256  # claims split, then settled, together by settle_lines (their sums stay in L1: 14 KiB)
    MAXCOUNTERS = 16
    MAXLIMITS = 16
    BP = 10000
    BP2 = 100000000

# Line class codes (schema.LINE_CLASSES)
cdef enum:
    CLS_A = 0
    CLS_B = 1
    CLS_SPECIAL = 2
    CLS_SUPP = 3
    CLS_EXCLUDED = 4
    CLS_UNKNOWN = 5

cdef enum:
    NOUT = OUT_ADMISSION_ORDINAL + 1  # columns of settle_claims' out


cdef inline int64_t round_div(int128 n, int128 d) noexcept nogil:
    """round(n / d), half away from zero; d > 0."""
    if n >= 0:
        return <int64_t>((2 * n + d) // (2 * d))
    return -<int64_t>((-2 * n + d) // (2 * d))


cdef inline int64_t round_div64(int64_t n, int64_t d) noexcept nogil:
    """round(n / d), half away from zero; d > 0 and |2n + d| < 2**63 (the caller knows)."""
    if n >= 0:
        return (2 * n + d) // (2 * d)
    return -((-2 * n + d) // (2 * d))


cdef inline int64_t floor_div64(int64_t n, int64_t d) noexcept nogil:
    """floor(n / d) toward minus infinity; d > 0 (C division truncates toward zero)."""
    cdef int64_t q = n // d
    if (n % d != 0) and (n < 0):
        q -= 1
    return q


cdef inline int128 round_div128(int128 n, int128 d) noexcept nogil:
    """round(n / d), half away from zero, without narrowing; d > 0."""
    if n >= 0:
        return (2 * n + d) // (2 * d)
    return -((-2 * n + d) // (2 * d))


cdef inline int64_t scaled_round(int128 acc, int64_t f) noexcept nogil:
    """round(acc * f / 10**8), acc a sum of fen x bp, f a factor in bp. At the usual
    factor of 100 % and a sum below 2**61 this is one 64-bit division."""
    cdef int128 lim = (<int128>1) << 61
    if f == BP and acc < lim and acc > -lim:
        return round_div64(<int64_t>acc, BP)
    return round_div(acc * f, BP2)


cdef inline int64_t floor_div(int128 n, int128 d) noexcept nogil:
    """floor(n / d) toward minus infinity; d > 0."""
    cdef int128 q = n // d
    if (n % d != 0) and (n < 0):
        q -= 1
    return <int64_t>q


cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


ctypedef struct LineRules:
    # the line split's inputs (schemes.md §1), as pointers: one claim's lines are split by
    # split_claim without a memoryview per call
    const int64_t* amount
    const int64_t* quantity
    const int8_t* cls
    const int16_t* item_ratio  # bp, -1: the class's ratio (0..10000: inputs.py checks ratios)
    const int64_t* max_price
    const int64_t* class_ratio
    bint supplementary_catalogue
    int64_t per_fen
    int64_t* self_pay
    int64_t* first_self_pay
    int64_t* eligible


ctypedef struct Stored:  # split_line writes each line's split to the outputs
    char unused
ctypedef struct Summed:  # split_line only adds it to the claim's sums
    char unused
ctypedef fused line_out:  # two compiled versions of split_line, no flag tested per line
    Stored
    Summed


cdef inline void split_line(const LineRules* L, int64_t i, bint benefit, int64_t* s, line_out* how) noexcept nogil:
    """Split line i into self_pay / first_self_pay / eligible and add them to the claim's sums ``s``;
    when ``how`` is a ``Stored*`` (NULL: only its type counts), also write them to the line's outputs."""
    cdef int64_t amt = L.amount[i], over = 0, allowed, fsp, r, mp
    cdef int128 cap
    cdef int8_t k = L.cls[i]
    s[SUM_TOTAL] += amt
    if (not benefit) or k == CLS_EXCLUDED or k == CLS_UNKNOWN or (k == CLS_SUPP and not L.supplementary_catalogue):
        if line_out is Stored:
            L.self_pay[i] = amt
            L.first_self_pay[i] = 0
            L.eligible[i] = 0
        s[SUM_SELF_PAY] += amt
        return
    mp = L.max_price[i]
    if mp >= 0 and amt > 0:
        # ceiling = round(max_unit_price x quantity), kept in 128 bits: a huge
        # quantity must not wrap; a ceiling at or above the amount cuts nothing
        cap = round_div128(<int128>mp * L.quantity[i], L.per_fen)
        if cap < amt:
            over = amt - <int64_t>cap
    allowed = amt - over
    r = L.item_ratio[i]
    if r < 0:
        r = L.class_ratio[k]
    # |allowed| <= 10**14 fen and r <= 10**4 bp (inputs.py enforces both), so
    # the product fits 64 bits and the division by a constant is cheap
    fsp = round_div64(allowed * r, BP)
    if line_out is Stored:
        L.self_pay[i] = over
        L.first_self_pay[i] = fsp
        L.eligible[i] = allowed - fsp
    s[SUM_SELF_PAY] += over
    s[SUM_FIRST_SELF_PAY] += fsp
    s[SUM_ELIGIBLE_A + k] += allowed - fsp


cdef inline bint negative_sums(const int64_t* s) noexcept nogil:
    """Whether a claim with sums ``s`` is rejected as negative_claim_total (schemes.md §1): a
    negative total, self_pay, first_self_pay, eligible, or eligible of one class."""
    cdef int64_t k, e = 0
    cdef bint neg = s[SUM_TOTAL] < 0 or s[SUM_SELF_PAY] < 0 or s[SUM_FIRST_SELF_PAY] < 0
    for k in range(SUM_ELIGIBLE_A, SUM_ELIGIBLE_A + NCLS):
        e += s[k]
        neg = neg or s[k] < 0
    return neg or e < 0


cdef LineRules line_rules(const int64_t[::1] amount, const int64_t[::1] quantity, const int8_t[::1] cls,
                          const int16_t[::1] item_ratio, const int64_t[::1] max_price,
                          const int64_t[::1] class_ratio, bint supplementary_catalogue, int64_t per_fen,
                          int64_t[::1] self_pay, int64_t[::1] first_self_pay, int64_t[::1] eligible) except *:
    cdef LineRules L
    cdef Py_ssize_t n = amount.shape[0], nout = self_pay.shape[0]
    if not (quantity.shape[0] == cls.shape[0] == item_ratio.shape[0] == max_price.shape[0] == n
            and first_self_pay.shape[0] == eligible.shape[0] == nout and (nout == n or nout == 0)):
        raise ValueError("the per-line arrays differ in length")
    if class_ratio.shape[0] < CLS_UNKNOWN + 1:
        raise ValueError("class_ratio needs one ratio per line class")
    L.amount, L.quantity, L.cls = &amount[0], &quantity[0], &cls[0]
    L.item_ratio, L.max_price, L.class_ratio = &item_ratio[0], &max_price[0], &class_ratio[0]
    L.supplementary_catalogue, L.per_fen = supplementary_catalogue, per_fen
    if nout:  # else empty: the split is summed by claim, not stored (settle_lines without line outputs)
        L.self_pay, L.first_self_pay, L.eligible = &self_pay[0], &first_self_pay[0], &eligible[0]
    else:
        L.self_pay = L.first_self_pay = L.eligible = NULL
    return L


def split_lines(const index_t[::1] claim_of_line, const int64_t[::1] amount,
                const int64_t[::1] quantity, const int8_t[::1] cls,
                const int16_t[::1] item_ratio, const int64_t[::1] max_price,
                const uint8_t[::1] benefit, const int64_t[::1] class_ratio,
                bint supplementary_catalogue, int64_t per_fen,
                int64_t[::1] self_pay, int64_t[::1] first_self_pay, int64_t[::1] eligible,
                int64_t[:, ::1] claim_sums, int64_t start, int64_t stop):
    """Split lines [start, stop) into self_pay / first_self_pay / eligible (schemes.md §1).

    ``claim_sums[c]`` accumulates, per claim: total, self_pay, first_self_pay,
    then eligible of classes A, B, special, supplementary. Lines of one claim
    must not be split across two concurrent calls. ``max_price`` is in units of
    0.0001 yuan and ``quantity`` in millionths: ``per_fen`` is how many units
    of their product make one fen (10**8), so the ceiling is rounded once, on
    the exact product (contract §1). The engine calls ``settle_lines``, which
    does this claim by claim and settles each claim at once.
    """
    cdef int64_t i, c
    if stop <= start:
        return
    cdef LineRules L = line_rules(amount, quantity, cls, item_ratio, max_price, class_ratio,
                                  supplementary_catalogue, per_fen, self_pay, first_self_pay, eligible)
    if self_pay.shape[0] != amount.shape[0]:
        raise ValueError("split_lines stores every line's split: self_pay, first_self_pay, eligible are per line")
    with nogil:
        for i in range(start, stop):
            c = claim_of_line[i]
            split_line(&L, i, benefit[c], &claim_sums[c, 0], <Stored*>NULL)


# ---- settlement, one step per helper ----------------------------------------
# The steps are numbered as in reference.settle_claim and the policy guide
# (policies/README.md, "How a claim is settled"); each helper reads the claim's
# block row ``Bb`` (B[b]) and updates the claim's working values ``w``.

ctypedef struct Claim:
    int64_t e[NCLS]     # eligible by class
    int64_t E           # eligible, all classes
    int64_t fsp         # first_self_pay
    int64_t f           # benefit factor, bp
    int64_t cat         # member category: 0 in service, 1 retired
    int64_t ordinal     # admission ordinal (0: not an admission)
    int64_t acct        # paid by the personal account
    int64_t reduce      # account paid on scale classes, off the scale's base
    int64_t d           # per-admission deductible
    int64_t X           # the slice of the scale this claim covers
    int64_t ded_band    # pieces in deductible bands
    int64_t sub_base    # pieces in subsidised bands
    int64_t O           # cost the cap cuts, to the tier
    int64_t pool        # fund_pool
    int64_t supp        # fund_supplementary
    int64_t mps         # member_policy_share
    int64_t deductible
    int64_t subsidy
    int128 direct_pool  # fund_pool from classes paid directly


cdef inline int64_t class_sum(const int64_t* e, int64_t mask) noexcept nogil:
    """Eligible of the classes whose bits are set in ``mask``."""
    cdef int64_t k, s = 0
    for k in range(NCLS):
        if mask & (1 << k):
            s += e[k]
    return s


cdef inline void step1_ordinal(Claim* w, const int64_t* Bb, int64_t* ordinal_count) noexcept nogil:
    """1. Admission ordinal: 1 + earlier admissions with benefit this year."""
    w.ordinal = 0
    if Bb[F_INPATIENT]:
        ordinal_count[0] += 1
        w.ordinal = ordinal_count[0]


cdef inline void step2_account_before(Claim* w, const int64_t* Bb, const int64_t* items,
                                      int64_t* bal) noexcept nogil:
    """2. Account before the fund, item by item (e.g. SZ outpatient); what it pays
    on scale classes leaves the scale's base."""
    cdef int64_t j, mask, amt, pay
    w.acct = 0
    w.reduce = 0
    if Bb[F_ACCOUNT] != ACCOUNT_BEFORE_FUND:
        return
    for j in range(Bb[F_NACCT]):
        mask = items[j]
        amt = (w.fsp if (mask & FSP_BIT) else 0) + class_sum(w.e, mask)
        pay = imax(0, imin(bal[0], amt))
        bal[0] -= pay
        w.acct += pay
        if (mask & FSP_BIT) == 0 and (mask & ~Bb[F_SCALE_MASK]) == 0:
            w.reduce += pay


cdef inline void step3_direct(Claim* w, const int64_t* direct) noexcept nogil:
    """3. Classes the fund pays directly, outside the scale: round(e × rate × factor) each."""
    cdef int64_t k
    w.direct_pool = 0
    for k in range(NCLS):
        if direct[k] > 0:
            w.direct_pool += round_div(<int128>w.e[k] * direct[k] * w.f, BP2)


cdef inline void step4_base_deductible(Claim* w, const int64_t* Bb, const int64_t* ded_row) noexcept nogil:
    """4. Base of the scale (its classes, less the account paid on them) and the
    per-admission deductible by level row and ordinal; X = base − deductible."""
    cdef int64_t base = imax(0, class_sum(w.e, Bb[F_SCALE_MASK]) - w.reduce)
    w.d = 0
    if Bb[F_NORD] > 0:
        w.d = imin(base, ded_row[imin(imax(w.ordinal, 1), Bb[F_NORD]) - 1])
    w.X = base - w.d


cdef inline void step5_scale(Claim* w, const int64_t* Bb, int64_t* counters, const int64_t* band_from,
                             const int64_t* band_pool, const int64_t* band_supp,
                             const int64_t* band_flags) noexcept nogil:
    """5. The band scale on the slice [K, K + X), K the annual counter (or 0): each
    fund is the exact sum of piece × rate, times the factor, rounded once."""
    cdef int64_t k, lo, hi, piece, nb = Bb[F_NBANDS]
    cdef int64_t K = counters[Bb[F_COUNTER]] if Bb[F_COUNTER] >= 0 else 0
    cdef int128 pool_acc = 0, supp_acc = 0
    w.ded_band = 0
    w.sub_base = 0
    for k in range(nb):
        lo = imax(band_from[k], K)
        hi = K + w.X
        if k + 1 < nb:
            hi = imin(hi, band_from[k + 1])
        piece = hi - lo
        if piece <= 0:
            continue
        pool_acc += <int128>piece * band_pool[2 * k + w.cat]
        supp_acc += <int128>piece * band_supp[k]
        if band_flags[k] & FLAG_DEDUCTIBLE:
            w.ded_band += piece
        if band_flags[k] & FLAG_SUBSIDISED:
            w.sub_base += piece
    if Bb[F_COUNTER] >= 0:
        counters[Bb[F_COUNTER]] = K + w.X
    w.pool = scaled_round(pool_acc, w.f)
    w.supp = scaled_round(supp_acc, w.f)


cdef inline void step6_cap(Claim* w, const int64_t* Bb, int64_t cap_amt, int64_t* used) noexcept nogil:
    """6. Annual cap on fund_pool; with overflow to the tier, what it cuts (O) goes on.
    Then the directly paid classes join fund_pool."""
    cdef int64_t room, p
    w.O = 0
    if Bb[F_CAP] >= 0:
        room = imax(0, cap_amt - used[Bb[F_CAP]])
        if w.pool > room:
            if Bb[F_OVERFLOW]:
                p = Bb[F_P_RET] if w.cat else Bb[F_P_IN]
                # the cost the cap cuts: X less the deductible bands, less
                # the cost whose fund share fits in the room
                if p * w.f > 0:
                    w.O = w.X - w.ded_band - round_div(<int128>room * BP2, <int128>p * w.f)
                else:
                    w.O = w.X - w.ded_band
                w.O = imax(0, w.O)
            w.pool = room
        used[Bb[F_CAP]] += w.pool
    w.pool += <int64_t>w.direct_pool


cdef inline void step7_tier(Claim* w, const int64_t* Bb, int64_t limit, int64_t* used) noexcept nogil:
    """7. Supplementary tier (大额 / 地方补充) on O and its classes, never above
    eligible − fund_pool, then within its annual limit; the deductible follows."""
    cdef int64_t rate = Bb[F_TIER_RATE]
    if rate > 0:
        w.supp += round_div(<int128>(w.O + class_sum(w.e, Bb[F_TIER_MASK])) * rate * w.f, BP2)
    w.supp = imax(0, imin(w.supp, w.E - w.pool))  # before the limit is charged
    if Bb[F_SUPP_LIMIT] >= 0:
        w.supp = imax(0, imin(w.supp, limit - used[Bb[F_SUPP_LIMIT]]))
        used[Bb[F_SUPP_LIMIT]] += w.supp
    w.mps = w.E - w.pool - w.supp
    w.deductible = imin(w.d + w.ded_band, w.mps)


cdef inline void step8_subsidy(Claim* w, const int64_t* Bb, bint civil_servant) noexcept nogil:
    """8. Civil-servant subsidy on the member's share of the subsidised bands."""
    cdef int64_t rate
    w.subsidy = 0
    if civil_servant:
        rate = Bb[F_SUB_RET] if w.cat else Bb[F_SUB_IN]
        if rate > 0:
            w.subsidy = imin(round_div(<int128>imax(0, w.sub_base - w.pool - w.supp) * rate, BP), w.mps)


cdef inline void step9_account_after(Claim* w, const int64_t* Bb, int64_t* bal) noexcept nogil:
    """9. Account after the fund: the member's share less the subsidy, and
    first_self_pay. Cash is what remains of the total."""
    cdef int64_t pay
    if Bb[F_ACCOUNT] == ACCOUNT_MEMBER_SHARE:
        pay = imax(0, imin(bal[0], w.mps - w.subsidy + w.fsp))
        bal[0] -= pay
        w.acct += pay


# ---- one claim settled, and the member-year it belongs to ---------------------

ctypedef struct Rules:
    # the compiled policy (policy.Compiled) as pointers, with each table's row lengths
    const int64_t* block_of_setting
    int64_t nsettings
    const int64_t* B
    int64_t nB
    const int64_t* band_from
    int64_t nband_from
    const int64_t* band_pool
    int64_t nband_pool
    const int64_t* band_supp
    int64_t nband_supp
    const int64_t* band_flags
    int64_t nband_flags
    const int64_t* ded
    int64_t ded_block
    int64_t ded_level
    const int64_t* acct_items
    int64_t nacct_items
    const int64_t* direct
    int64_t ndirect
    const int64_t* lim_months
    int64_t nlim_months
    const int64_t* lim_amount
    int64_t nlim_amount
    const int64_t* lim_n


ctypedef struct Claims:
    # per claim, in settlement order
    const int64_t* member
    const int32_t* year
    const int64_t* period
    const int8_t* setting
    const uint8_t* benefit
    const int64_t* factor
    const int8_t* level_row
    const int64_t* months


ctypedef struct Members:
    # per member row; credit[m * ncredit + k] is credited at the end of base_year + k
    const int8_t* category
    const uint8_t* civil_servant
    const int64_t* balance
    int32_t base_year
    const int64_t* credit
    int64_t ncredit


ctypedef struct MemberYear:
    # the running state of the member-year being settled
    int64_t m
    int32_t year
    int64_t bal
    int64_t ordinal_count
    int64_t counters[MAXCOUNTERS]
    int64_t used[MAXLIMITS]


cdef Rules rules_of(const int64_t[:, ::1] block_of_setting, const int64_t[:, ::1] B,
                    const int64_t[:, ::1] band_from, const int64_t[:, :, ::1] band_pool,
                    const int64_t[:, ::1] band_supp, const int64_t[:, ::1] band_flags,
                    const int64_t[:, :, ::1] ded, const int64_t[:, ::1] acct_items,
                    const int64_t[:, ::1] direct, const int64_t[:, ::1] lim_months,
                    const int64_t[:, ::1] lim_amount, const int64_t[::1] lim_n) noexcept:
    cdef Rules R
    R.block_of_setting, R.nsettings = &block_of_setting[0, 0], block_of_setting.shape[1]
    R.B, R.nB = &B[0, 0], B.shape[1]
    R.band_from, R.nband_from = &band_from[0, 0], band_from.shape[1]
    R.band_pool, R.nband_pool = &band_pool[0, 0, 0], band_pool.shape[1] * band_pool.shape[2]
    R.band_supp, R.nband_supp = &band_supp[0, 0], band_supp.shape[1]
    R.band_flags, R.nband_flags = &band_flags[0, 0], band_flags.shape[1]
    R.ded, R.ded_block, R.ded_level = &ded[0, 0, 0], ded.shape[1] * ded.shape[2], ded.shape[2]
    R.acct_items, R.nacct_items = &acct_items[0, 0], acct_items.shape[1]
    R.direct, R.ndirect = &direct[0, 0], direct.shape[1]
    R.lim_months, R.nlim_months = &lim_months[0, 0], lim_months.shape[1]
    R.lim_amount, R.nlim_amount = &lim_amount[0, 0], lim_amount.shape[1]
    R.lim_n = &lim_n[0]
    return R


cdef Claims claims_of(const int64_t[::1] member_of_claim, const int32_t[::1] year, const int64_t[::1] period,
                      const int8_t[::1] setting, const uint8_t[::1] benefit, const int64_t[::1] factor,
                      const int8_t[::1] level_row, const int64_t[::1] months) except *:
    cdef Claims C
    cdef Py_ssize_t n = member_of_claim.shape[0]
    if not (year.shape[0] == period.shape[0] == setting.shape[0] == benefit.shape[0] == factor.shape[0]
            == level_row.shape[0] == months.shape[0] == n):
        raise ValueError("the per-claim arrays differ in length")
    C.member, C.year, C.period, C.setting = &member_of_claim[0], &year[0], &period[0], &setting[0]
    C.benefit, C.factor, C.level_row, C.months = &benefit[0], &factor[0], &level_row[0], &months[0]
    return C


cdef Members members_of(const int8_t[::1] category, const uint8_t[::1] civil_servant,
                        const int64_t[::1] balance, int32_t base_year, const int64_t[:, ::1] credit) noexcept:
    cdef Members M
    M.category, M.civil_servant, M.balance = &category[0], &civil_servant[0], &balance[0]
    M.base_year, M.credit, M.ncredit = base_year, &credit[0, 0], credit.shape[1]
    return M


cdef inline void open_member_year(MemberYear* s, const Members* M, int64_t m, int32_t y) noexcept nogil:
    """Start the member-year (m, y) unless it is the one running. The personal account carries
    over (contract §3): a member's first year opens at ``balance[m]`` (1 January of
    ``base_year``) plus the credits of the years from ``base_year`` to y; a later year at the
    previous year's closing plus the credits of the years in between."""
    cdef int64_t k
    cdef int32_t yy
    if m == s.m and y == s.year:
        return
    for k in range(MAXCOUNTERS):
        s.counters[k] = 0
    for k in range(MAXLIMITS):
        s.used[k] = 0
    if m != s.m:
        s.bal = M.balance[m]
        yy = M.base_year
    else:
        yy = s.year
    while yy < y:  # closing of year yy, plus its credit, opens yy + 1
        if 0 <= yy - M.base_year < M.ncredit:
            s.bal += M.credit[m * M.ncredit + yy - M.base_year]
        yy += 1
    s.ordinal_count = 0
    s.m = m
    s.year = y


cdef inline int64_t limit_amount(const Rules* R, int64_t j, int64_t months) noexcept nogil:
    """The annual limit j in force for a member with ``months`` of enrolment."""
    cdef int64_t k, amt = R.lim_amount[j * R.nlim_amount]
    for k in range(1, R.lim_n[j]):
        if months >= R.lim_months[j * R.nlim_months + k]:
            amt = R.lim_amount[j * R.nlim_amount + k]
    return amt


cdef inline void settle_claim(const Rules* R, const Claims* C, const Members* M, MemberYear* s, int64_t c,
                              const int64_t* sums, int64_t* out) noexcept nogil:
    """Settle claim c (its sums ``sums``) in its member-year ``s``: steps 1–9, into ``out``
    (columns ``OUT_*``)."""
    cdef int64_t k, b, m = C.member[c], cap_amt = 0, supp_limit = 0
    cdef const int64_t* Bb
    cdef Claim w
    open_member_year(s, M, m, C.year[c])
    for k in range(NOUT):
        out[k] = 0
    if not C.benefit[c]:
        return
    b = R.block_of_setting[C.period[c] * R.nsettings + C.setting[c]]
    Bb = R.B + b * R.nB
    w.cat = M.category[m]
    w.f = C.factor[c]
    w.fsp = sums[SUM_FIRST_SELF_PAY]
    w.E = 0
    for k in range(NCLS):
        w.e[k] = sums[SUM_ELIGIBLE_A + k]
        w.E += w.e[k]
    if Bb[F_CAP] >= 0:
        cap_amt = limit_amount(R, Bb[F_CAP_ROW], C.months[c])
    if Bb[F_SUPP_LIMIT] >= 0:
        supp_limit = limit_amount(R, Bb[F_SUPP_ROW], C.months[c])
    step1_ordinal(&w, Bb, &s.ordinal_count)
    step2_account_before(&w, Bb, R.acct_items + b * R.nacct_items, &s.bal)
    step3_direct(&w, R.direct + b * R.ndirect)
    step4_base_deductible(&w, Bb, R.ded + b * R.ded_block + C.level_row[c] * R.ded_level)
    step5_scale(&w, Bb, s.counters, R.band_from + b * R.nband_from, R.band_pool + b * R.nband_pool,
                R.band_supp + b * R.nband_supp, R.band_flags + b * R.nband_flags)
    step6_cap(&w, Bb, cap_amt, s.used)
    step7_tier(&w, Bb, supp_limit, s.used)
    step8_subsidy(&w, Bb, M.civil_servant[m])
    step9_account_after(&w, Bb, &s.bal)
    out[OUT_DEDUCTIBLE] = w.deductible
    out[OUT_FUND_POOL] = w.pool
    out[OUT_FUND_SUPPLEMENTARY] = w.supp
    out[OUT_SUBSIDY] = w.subsidy
    out[OUT_ACCOUNT_PAID] = w.acct
    out[OUT_ADMISSION_ORDINAL] = w.ordinal


def settle_claims(const int64_t[::1] member_of_claim, const int32_t[::1] year,
                  const int64_t[::1] period,
                  const int8_t[::1] setting, const uint8_t[::1] benefit,
                  const int64_t[::1] factor, const int8_t[::1] level_row,
                  const int64_t[::1] months, const int64_t[:, :] sums,
                  const int8_t[::1] category, const uint8_t[::1] civil_servant,
                  const int64_t[::1] balance, int32_t base_year, const int64_t[:, ::1] credit,
                  const int64_t[:, ::1] block_of_setting, const int64_t[:, ::1] B,
                  const int64_t[:, ::1] band_from, const int64_t[:, :, ::1] band_pool,
                  const int64_t[:, ::1] band_supp, const int64_t[:, ::1] band_flags,
                  const int64_t[:, :, ::1] ded, const int64_t[:, ::1] acct_items,
                  const int64_t[:, ::1] direct,
                  const int64_t[:, ::1] lim_months, const int64_t[:, ::1] lim_amount,
                  const int64_t[::1] lim_n,
                  int64_t[:, :] out, int64_t start, int64_t stop):
    """Settle claims [start, stop), sorted by member then (settle_date, claim_id).

    ``start`` must be the first claim of a member. ``period[c]`` is the policy
    period of claim c: its block is ``block_of_setting[period, setting]``, a
    row of the tables stacked by period (``policy.Compiled``); what was paid
    against each limit (``used``) carries across a period change. Writes ``out[c]``
    (columns ``OUT_*``, _core.pxd): deductible, fund_pool, fund_supplementary,
    subsidy, account_paid, admission ordinal (0 = null).

    The personal account carries over (contract §3): ``balance[m]`` is member
    m's balance on 1 January of ``base_year``, and ``credit[m, k]`` what is
    credited to it at the end of ``base_year + k``. Each member-year opens at
    the previous year's closing plus the credits of the years in between.

    Each claim with benefit goes through steps 1–9 (the ``step*`` helpers above).
    The engine calls ``settle_lines``, which splits each claim's lines first. ``sums``
    and ``out`` may be in either order (the engine's are column-major).
    """
    cdef int64_t c, k
    cdef int64_t row[NSUMS]
    cdef int64_t o[NOUT]
    if stop <= start:
        return
    if sums.shape[1] < NSUMS or out.shape[1] < NOUT or sums.shape[0] < stop or out.shape[0] < stop:
        raise ValueError("sums or out is too small")
    cdef Rules R = rules_of(block_of_setting, B, band_from, band_pool, band_supp, band_flags, ded, acct_items,
                            direct, lim_months, lim_amount, lim_n)
    cdef Claims C = claims_of(member_of_claim, year, period, setting, benefit, factor, level_row, months)
    cdef Members M = members_of(category, civil_servant, balance, base_year, credit)
    cdef MemberYear s
    s.m = -1
    s.year = -1
    with nogil:
        for c in range(start, stop):
            for k in range(NSUMS):
                row[k] = sums[c, k]
            settle_claim(&R, &C, &M, &s, c, row, o)
            for k in range(NOUT):
                out[c, k] = o[k]


def settle_lines(const int64_t[::1] line_start, const index_t[::1] line_claim, const int64_t[::1] amount,
                 const int64_t[::1] quantity, const int8_t[::1] cls,
                 const int16_t[::1] item_ratio, const int64_t[::1] max_price,
                 const int64_t[::1] class_ratio, bint supplementary_catalogue, int64_t per_fen,
                 int64_t[::1] self_pay, int64_t[::1] first_self_pay, int64_t[::1] eligible,
                 int64_t[:, :] sums, uint8_t[::1] negative,
                 const int64_t[::1] member_of_claim, const int32_t[::1] year,
                 const int64_t[::1] period,
                 const int8_t[::1] setting, const uint8_t[::1] benefit,
                 const int64_t[::1] factor, const int8_t[::1] level_row,
                 const int64_t[::1] months,
                 const int8_t[::1] category, const uint8_t[::1] civil_servant,
                 const int64_t[::1] balance, int32_t base_year, const int64_t[:, ::1] credit,
                 const int64_t[:, ::1] block_of_setting, const int64_t[:, ::1] B,
                 const int64_t[:, ::1] band_from, const int64_t[:, :, ::1] band_pool,
                 const int64_t[:, ::1] band_supp, const int64_t[:, ::1] band_flags,
                 const int64_t[:, :, ::1] ded, const int64_t[:, ::1] acct_items,
                 const int64_t[:, ::1] direct,
                 const int64_t[:, ::1] lim_months, const int64_t[:, ::1] lim_amount,
                 const int64_t[::1] lim_n,
                 int64_t[:, :] out, bint settle, int64_t start, int64_t stop):
    """The kernel of a run: claims [start, stop) (``start`` the first claim of a member) in
    one call. Claim c's lines are ``line_start[c]:line_start[c+1]`` (``line_claim[i]`` = c):
    they are split as ``split_lines`` splits them and the claim's sums written to ``sums[c]``
    (every column: ``sums`` may be uninitialised); then, unless it is rejected as
    negative_claim_total (``negative[c]`` set, ``out[c]`` zero), the claim is settled as
    ``settle_claims`` settles it (with ``settle``; without, ``out`` is not touched and may be
    empty). A rejected claim is skipped as if it were not there. Returns how many were
    rejected. ``self_pay``, ``first_self_pay`` and ``eligible`` may be empty (length 0): the
    lines are then split into the claims' sums only, and nothing per line is written (a run
    without lines.parquet never touches those pages).

    Claims go in blocks of ``BLOCK``: the block's lines are split in one flat loop into the
    block's sums (a small row-major scratch, in cache), then its claims checked and settled
    from there, each claim's sums and results stored through column pointers. ``sums`` and
    ``out`` may be in either order: the engine's are column-major, so that each output
    column is one contiguous array (the writers take them without a copy); a scratch for
    the results too, or copying the block out column by column, measured slower. No
    separate pass reads the sums back, and the caller makes one call per thread.
    """
    cdef int64_t c, c0, c1, i, k, m, count = 0
    cdef bint neg, store = self_pay.shape[0] != 0 or amount.shape[0] == 0
    cdef int64_t blk[BLOCK * NSUMS]
    cdef int64_t o[NOUT]
    cdef int64_t* row
    cdef int64_t* scol[NSUMS]
    cdef int64_t* ocol[NOUT]
    cdef Py_ssize_t ss = sums.strides[0] // sizeof(int64_t), os = out.strides[0] // sizeof(int64_t)
    if stop <= start:
        return 0
    if negative.shape[0] != sums.shape[0] or line_start.shape[0] != sums.shape[0] + 1:
        raise ValueError("sums, negative and line_start do not match the claims")
    if sums.shape[1] != NSUMS:
        raise ValueError("sums needs a column per claim sum")
    if settle and (out.shape[0] != sums.shape[0] or out.shape[1] != NOUT):
        raise ValueError("out needs a row per claim and a column per result")
    cdef LineRules L = line_rules(amount, quantity, cls, item_ratio, max_price, class_ratio,
                                  supplementary_catalogue, per_fen, self_pay, first_self_pay, eligible)
    cdef Rules R = rules_of(block_of_setting, B, band_from, band_pool, band_supp, band_flags, ded, acct_items,
                            direct, lim_months, lim_amount, lim_n)
    cdef Claims C = claims_of(member_of_claim, year, period, setting, benefit, factor, level_row, months)
    cdef Members M = members_of(category, civil_servant, balance, base_year, credit)
    cdef MemberYear my
    for k in range(NSUMS):  # column pointers: sums[c, k] is scol[k][c * ss], in either order
        scol[k] = &sums[0, k]
    for k in range(NOUT):
        ocol[k] = &out[0, k] if settle else NULL
    my.m = -1
    my.year = -1
    with nogil:
        # claims in blocks: the block's lines split in one tight loop, then its claims checked and
        # settled while their sums are still in cache (one loop doing both per claim runs slower)
        c0 = start
        while c0 < stop:
            c1 = min(c0 + BLOCK, stop)
            memset(blk, 0, (c1 - c0) * NSUMS * sizeof(int64_t))
            # the block's members' rows (balance, credits, category) are read in member-row order,
            # i.e. at random: fetched now, they arrive while the block's lines are split
            m = -1
            for c in range(c0, c1):
                if C.member[c] != m:
                    m = C.member[c]
                    prefetch(&M.balance[m])
                    prefetch(&M.category[m])
                    prefetch(&M.civil_servant[m])
                    if M.ncredit:
                        prefetch(&M.credit[m * M.ncredit])
            if store:
                for i in range(line_start[c0], line_start[c1]):  # one flat loop: faster than a loop per claim
                    c = line_claim[i]
                    split_line(&L, i, C.benefit[c], &blk[(c - c0) * NSUMS], <Stored*>NULL)
            else:  # the claims' sums only: no per-line output written (nor its pages touched)
                for i in range(line_start[c0], line_start[c1]):
                    c = line_claim[i]
                    split_line(&L, i, C.benefit[c], &blk[(c - c0) * NSUMS], <Summed*>NULL)
            for c in range(c0, c1):
                row = &blk[(c - c0) * NSUMS]
                for k in range(NSUMS):
                    scol[k][c * ss] = row[k]
                neg = negative_sums(row)
                negative[c] = neg
                if neg:
                    count += 1
                    if settle:
                        for k in range(NOUT):
                            ocol[k][c * os] = 0
                    continue
                if settle:
                    settle_claim(&R, &C, &M, &my, c, row, o)
                    for k in range(NOUT):
                        ocol[k][c * os] = o[k]
            c0 = c1
    return count


ctypedef struct Rem:
    int64_t rem
    int64_t idx


cdef int cmp_rem(const void* a, const void* b) noexcept nogil:
    cdef const Rem* x = <const Rem*>a
    cdef const Rem* y = <const Rem*>b
    if x.rem != y.rem:
        return -1 if x.rem > y.rem else 1
    return -1 if x.idx < y.idx else (1 if x.idx > y.idx else 0)


cdef inline void sort_small(Rem* buf, int64_t n) noexcept nogil:
    """Insertion sort in cmp_rem order (largest remainder first, then lower index)."""
    cdef int64_t i, j
    cdef Rem x
    for i in range(1, n):
        x = buf[i]
        j = i - 1
        while j >= 0 and cmp_rem(&buf[j], &x) > 0:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = x


cdef inline void spread(int64_t T, int64_t W, bint small_weights, int64_t a, int64_t z,
                        const int64_t[::1] weight, int64_t[::1] share, Rem* buf) noexcept nogil:
    """Largest-remainder allocation of ``T`` over lines [a, z) by ``weight`` (sum ``W``); ``buf``
    holds at least z - a entries. ``small_weights``: W and every weight are in (-2**31, 2**31)."""
    cdef int64_t i, n = z - a, given = 0, missing
    cdef int64_t LIM31 = (<int64_t>1) << 31
    cdef int128 num
    cdef bint small
    if W == 0 or T == 0:
        for i in range(a, z):
            share[i] = 0
        return
    # With T, W and every weight below 2**31 in magnitude, T·w fits 64 bits
    # and the 128-bit division (a library call) is not needed.
    small = small_weights and W > 0 and T > -LIM31 and T < LIM31
    for i in range(a, z):
        if small:
            share[i] = floor_div64(T * weight[i], W)
            buf[i - a].rem = T * weight[i] - share[i] * W
            buf[i - a].idx = i
            given += share[i]
            continue
        num = <int128>T * weight[i]
        if W > 0:
            share[i] = floor_div(num, W)
            buf[i - a].rem = <int64_t>(num - <int128>share[i] * W)
        else:
            share[i] = floor_div(-num, -W)
            buf[i - a].rem = <int64_t>(-num - <int128>share[i] * (-W))
        buf[i - a].idx = i
        given += share[i]
    missing = T - given
    if missing > 0:
        if n <= 32:
            sort_small(buf, n)  # most claims have a few lines: no qsort call
        else:
            qsort(buf, n, sizeof(Rem), cmp_rem)
        for i in range(missing):
            share[buf[i % n].idx] += 1


def allocate(const int64_t[::1] line_start, const int64_t[:] amount,
             const int64_t[::1] weight, int64_t[::1] share, int64_t start, int64_t stop,
             const int64_t[:] amount2=None, int64_t[::1] share2=None):
    """Largest-remainder allocation of ``amount[c]`` over the lines of claim c.

    Lines of claim c are ``line_start[c]:line_start[c+1]``, in ``line_no``
    order (ties go to the lower line_no). Contract §4, lines.parquet. Every
    line of claims [start, stop) is written (``share`` may be uninitialised);
    ``amount`` may be strided (a column of settle_claims' ``out``, not copied).
    ``amount2``/``share2``: a second amount spread by the same weights in the
    same pass (fund_supplementary beside fund_pool), as a call of its own would.
    """
    cdef int64_t c, i, a, z, n, W
    cdef bint small_weights, two = amount2 is not None
    cdef int64_t LIM31 = (<int64_t>1) << 31
    cdef Rem* buf
    cdef int64_t cap = 64
    if two and (share2 is None or amount2.shape[0] != amount.shape[0] or share2.shape[0] != share.shape[0]):
        raise ValueError("amount2 and share2 go together, shaped as amount and share")
    buf = <Rem*>malloc(cap * sizeof(Rem))
    with nogil:
        for c in range(start, stop):
            a = line_start[c]
            z = line_start[c + 1]
            n = z - a
            W = 0
            small_weights = 1
            for i in range(a, z):
                W += weight[i]
                if weight[i] <= -LIM31 or weight[i] >= LIM31:
                    small_weights = 0
            small_weights = small_weights and W > -LIM31 and W < LIM31
            if n > cap:
                free(buf)
                cap = n * 2
                buf = <Rem*>malloc(cap * sizeof(Rem))
            spread(amount[c], W, small_weights, a, z, weight, share, buf)
            if two:
                spread(amount2[c], W, small_weights, a, z, weight, share2, buf)
    free(buf)


cdef extern from "math.h" nogil:
    double floor(double)
    double ceil(double)
    double fabs(double)
    bint isfinite(double)


def floats_to_scaled(const double[::1] x, double factor, double limit, bint exact,
                     int64_t[::1] values, uint8_t[::1] flags):
    """One pass of money.to_scaled for float64 input: round(x * factor), half away.

    flags[i]: 0 settled; 1 not finite or too large (|x| >= limit); 2 too close to
    a rounding tie (or, with ``exact``, not integral) for binary arithmetic to
    decide: the caller settles it with the decimal repr. Same rules as the NumPy
    formulation it replaces (money._floats_to_scaled).
    """
    cdef Py_ssize_t i, n = x.shape[0]
    cdef double v, y, frac, tol
    with nogil:
        for i in range(n):
            v = x[i]
            if not isfinite(v) or fabs(v) >= limit:
                values[i] = 0
                flags[i] = 1
                continue
            y = v * factor
            frac = y - floor(y)
            tol = 9.094947017729282e-13 * (fabs(y) if fabs(y) > 1.0 else 1.0)  # 2**-40
            values[i] = <int64_t>(floor(y + 0.5) if y >= 0 else ceil(y - 0.5))
            if fabs(frac - 0.5) < tol or (exact and floor(y) != y):
                flags[i] = 2
            else:
                flags[i] = 0


def decimals_to_scaled(const int64_t[::1] words, int64_t width, const uint8_t[::1] nulls, int64_t shift,
                       bint exact, int64_t big, int64_t[::1] values, uint8_t[::1] status):
    """One pass of money.to_scaled for decimal input, from the Arrow buffer's 64-bit
    words (``width`` per value, the array's offset already applied): the unscaled
    integer times 10**shift (shift >= 0), or divided by 10**-shift rounding half away
    from zero. Nulls give 0.

    status[i]: 0 settled; 1 the unscaled integer is not an int64 (or is its minimum):
    the caller settles it with Decimal; 2 with ``exact``, not a whole number of units;
    3 beyond ``big`` before multiplying (far beyond any limit). Same rules as the
    NumPy formulation it replaces (money._decimal_to_scaled)."""
    cdef Py_ssize_t i, n = values.shape[0]
    cdef int64_t low, sign, k, p10 = 1, mag, q, r
    cdef bint fits
    for k in range(shift if shift >= 0 else -shift):
        p10 *= 10
    with nogil:
        for i in range(n):
            values[i] = 0
            status[i] = 0
            if nulls[i]:
                continue
            low = words[i * width]
            sign = -1 if low < 0 else 0
            fits = low != INT64_MIN
            for k in range(1, width):
                if words[i * width + k] != sign:
                    fits = 0
            if not fits:
                status[i] = 1
                continue
            if shift < 0:
                mag = -low if low < 0 else low
                q = mag // p10
                r = mag - q * p10
                if exact and r != 0:
                    status[i] = 2
                    continue
                if 2 * r >= p10:
                    q += 1
                values[i] = -q if low < 0 else q
            else:
                if (-low if low < 0 else low) > big:
                    status[i] = 3
                    continue
                values[i] = low * p10


ctypedef struct Catalogue:
    # the catalogue sorted by (item, valid_from), as encode.catalogue_rows lays it out
    const int64_t* first
    const int64_t* count
    const int64_t* start
    const int64_t* end
    const int64_t* order


cdef inline Catalogue catalogue_view(const int64_t[::1] first, const int64_t[::1] count, const int64_t[::1] start,
                                     const int64_t[::1] end, const int64_t[::1] order) noexcept:
    cdef Catalogue c
    c.first, c.count, c.start, c.end, c.order = &first[0], &count[0], &start[0], &end[0], &order[0]
    return c


cdef inline int64_t valid_row(int64_t it, int64_t d, const Catalogue* c) noexcept nogil:
    """The catalogue row of item ``it`` valid on day ``d`` (-1: none, or no item). The
    catalogue is sorted by (item, valid_from): item k's rows are first[k] ..
    first[k] + count[k] - 1; ``order`` maps a sorted position back to the row."""
    cdef int64_t j
    if it < 0:
        return -1
    for j in range(c.first[it], c.first[it] + c.count[it]):
        if c.start[j] <= d and d <= c.end[j]:
            return c.order[j]
    return -1


def match_catalogue(const index_t[::1] item, const int64_t[::1] take, const int32_t[::1] date,
                    const int64_t[::1] first, const int64_t[::1] count,
                    const int64_t[::1] start, const int64_t[::1] end, const int64_t[::1] order,
                    int64_t[::1] crow):
    """Catalogue row valid on each line's date (encode.catalogue_rows), in one pass.

    Line i is source row ``take[i]`` (or i when ``take`` is empty); ``item`` and
    ``date`` are per source row. The catalogue is sorted by (item, valid_from):
    item k's rows are first[k] .. first[k] + count[k] - 1; ``order`` maps a
    sorted position back to the catalogue row. -1 where no row applies.
    """
    cdef Py_ssize_t i, n = crow.shape[0]
    cdef int64_t r
    cdef bint has_take = take.shape[0] > 0
    cdef Catalogue c = catalogue_view(first, count, start, end, order)
    with nogil:
        for i in range(n):
            r = take[i] if has_take else i
            crow[i] = valid_row(item[r], date[r], &c)


def gather_catalogue(const int64_t[::1] crow, const int8_t[::1] cls, const int64_t[::1] ratio,
                     const int64_t[::1] price, int8_t unknown,
                     int8_t[::1] cls_out, int16_t[::1] ratio_out, int64_t[::1] price_out):
    """Per line: class (``unknown`` without a row), own first_self_pay ratio and
    max_unit_price (-1 when the catalogue gives none)."""
    cdef Py_ssize_t i, n = crow.shape[0]
    cdef int64_t r
    with nogil:
        for i in range(n):
            r = crow[i]
            if r < 0:
                cls_out[i] = unknown
                ratio_out[i] = -1
                price_out[i] = -1
            else:
                cls_out[i] = cls[r]
                ratio_out[i] = <int16_t>ratio[r]  # bp, 0..10000: inputs.py checks ratios
                price_out[i] = price[r]


cdef inline void civil(int64_t z, int64_t* y, int64_t* m, int64_t* d) noexcept nogil:
    """Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant)."""
    cdef int64_t era, doe, yoe, doy, mp
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d[0] = doy - (153 * mp + 2) // 5 + 1
    m[0] = mp + 3 if mp < 10 else mp - 9
    y[0] = yoe + era * 400 + (1 if m[0] <= 2 else 0)


def enrolment_months(const int32_t[::1] since, const int32_t[::1] on, int64_t[::1] out):
    """Whole months from ``since`` to ``on`` (schemes.md §4): 12·ΔY + ΔM, minus 1
    when the day of month of ``on`` is before that of ``since``."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef int64_t y1, m1, d1, y2, m2, d2
    with nogil:
        for i in range(n):
            civil(since[i], &y1, &m1, &d1)
            civil(on[i], &y2, &m2, &d2)
            out[i] = 12 * (y2 - y1) + (m2 - m1) - (1 if d2 < d1 else 0)


def negative_claims(const int64_t[:, ::1] sums, uint8_t[::1] out):
    """out[c] = 1 where claim c is rejected as negative_claim_total (schemes.md §1):
    a negative total, self_pay, first_self_pay, eligible, or eligible of one class.
    Returns how many."""
    cdef Py_ssize_t c, n = sums.shape[0]
    cdef int64_t count = 0
    with nogil:
        for c in range(n):
            out[c] = negative_sums(&sums[c, 0])
            count += out[c]
    return count


def keep_runs(const uint8_t[::1] src, uint8_t[::1] dst, int64_t width,
              const int64_t[::1] lo, const int64_t[::1] hi):
    """Copy the elements of ``src`` (``width`` bytes each) outside the runs [lo[k], hi[k])
    to the front of ``dst``, in order; returns how many. ``dst`` may be ``src`` itself: the
    elements then move down in place, with no fresh memory (engine: a policy's few rejected
    claims cut out of the run's arrays). Runs ascending and disjoint."""
    cdef Py_ssize_t k, nruns = lo.shape[0]
    cdef int64_t n = src.shape[0] // width if width > 0 else 0, at = 0, prev = 0, end
    if hi.shape[0] != nruns:
        raise ValueError("lo and hi differ in length")
    if nruns and (lo[0] < 0 or hi[nruns - 1] > n):
        raise ValueError("a run lies outside the array")
    if dst.shape[0] < (n - sum_runs(lo, hi)) * width:
        raise ValueError("dst is too small")
    with nogil:
        for k in range(nruns + 1):
            end = lo[k] if k < nruns else n
            if end > prev:
                if at != prev or &dst[0] != &src[0]:
                    memmove(&dst[at * width], &src[prev * width], (end - prev) * width)
                at += end - prev
            if k < nruns:
                prev = hi[k]
    return at


cdef int64_t sum_runs(const int64_t[::1] lo, const int64_t[::1] hi) except -1:
    cdef Py_ssize_t k
    cdef int64_t t = 0
    for k in range(lo.shape[0]):
        if hi[k] < lo[k] or (k and lo[k] < hi[k - 1]):
            raise ValueError("runs must be ascending and disjoint")
        t += hi[k] - lo[k]
    return t


def keep_runs_shifted(const index_t[::1] src, index_t[::1] dst, const int64_t[::1] lo, const int64_t[::1] hi,
                      const int64_t[::1] shift):
    """``keep_runs`` of positions (int32 or int64) that shift down with the runs cut before them: the
    elements kept after run k - 1 (and before run k) get ``shift[k]`` subtracted (shift[0]
    before the first run). For a line's claim position and a claim's first line."""
    cdef Py_ssize_t k, nruns = lo.shape[0]
    cdef int64_t n = src.shape[0], at = 0, prev = 0, end, j, d
    if hi.shape[0] != nruns or shift.shape[0] != nruns + 1:
        raise ValueError("lo, hi and shift do not match")
    if nruns and (lo[0] < 0 or hi[nruns - 1] > n):
        raise ValueError("a run lies outside the array")
    if dst.shape[0] < n - sum_runs(lo, hi):
        raise ValueError("dst is too small")
    with nogil:
        for k in range(nruns + 1):
            end = lo[k] if k < nruns else n
            d = shift[k]
            if d != 0 or at != prev or &dst[0] != &src[0]:
                for j in range(prev, end):
                    dst[at + j - prev] = <index_t>(src[j] - d)
            if end > prev:
                at += end - prev
            if k < nruns:
                prev = hi[k]
    return at


ctypedef fused key_t:
    int8_t
    int32_t
    int64_t


def first_differing(const index_t[::1] order, const int64_t[::1] start, const key_t[::1] values,
                    const uint8_t[::1] nulls, const uint8_t[::1] only, int64_t[::1] out):
    """Per claim c, the row of its first line (in ``order``, see group_lines) whose
    value differs from the line before it, or -1 when all its lines agree
    (encode's inconsistent_claim_header). Two nulls agree; a null and a value
    differ. With ``only`` non-empty, a pair counts only where both lines have it set
    (discharge_date matters on inpatient lines only)."""
    cdef Py_ssize_t c, j, nclaims = out.shape[0]
    cdef int64_t r, q
    cdef bint has_only = only.shape[0] > 0
    with nogil:
        for c in range(nclaims):
            out[c] = -1
            for j in range(start[c] + 1, start[c + 1]):
                r = order[j]
                q = order[j - 1]
                if has_only and not (only[r] and only[q]):
                    continue
                if nulls[r] != nulls[q] or (not nulls[r] and values[r] != values[q]):
                    out[c] = r
                    break


cdef int grow_slots(uint64_t** slots, int64_t* cap, const uint64_t* hashes, int64_t ndist) noexcept nogil:
    """Double the open-addressing table and put every code back in; 0 when out of memory."""
    cdef int64_t newcap = cap[0] * 2, mask = newcap - 1, j, s
    cdef uint64_t* fresh = <uint64_t*>calloc(newcap, sizeof(uint64_t))
    if fresh == NULL:
        return 0
    for j in range(ndist):
        s = hashes[j] & mask
        while fresh[s] != 0:
            s = (s + 1) & mask
        fresh[s] = (hashes[j] & 0xFFFFFFFF00000000ULL) | <uint64_t>(j + 1)
    free(slots[0])
    slots[0] = fresh
    cap[0] = newcap
    return 1


cdef enum:
    AHEAD = 32  # rows hashed ahead of the probe, their table slots prefetched


def string_codes(const uint8_t[::1] valid, const int32_t[::1] offsets, const uint8_t[::1] data,
                 int64_t offset, index_t[::1] code):
    """Dictionary codes of a string array (one chunk): ``code[i]`` numbers row i's value
    in order of first appearance, as Arrow's ``dictionary_encode`` numbers them; -1 for
    a null. Returns the row of each code's first appearance (the dictionary is the array
    taken at those rows). ``valid`` is the Arrow validity bitmap (empty: no nulls),
    ``offset`` the array's offset into its buffers. ``code`` is int32 or int64 (the
    caller knows the row count fits).

    One pass, no Python object per row. A row equal to the row before it (a claim's
    lines usually come together) costs one comparison; any other row one probe of an
    open-addressing table whose slots hold the hash's top half and the code, so a
    probe reads one slot and, on a match, the first appearance's bytes. Rows are
    hashed ``AHEAD`` rows early and their slots prefetched: in shuffled input every
    probe is otherwise a cache miss.
    """
    cdef Py_ssize_t i, n = code.shape[0]
    cdef int64_t k, j, a, b, pa_ = 0, pb = -1, c = -1, e, s, mask, ndist = 0, fcap = 1024
    cdef int64_t cap = 1 << 12
    cdef uint64_t h, slot, tag
    cdef uint64_t ring[AHEAD]
    cdef bint has_valid = valid.shape[0] > 0, ok = 1
    cdef const uint8_t* d = &data[0] if data.shape[0] > 0 else NULL
    cdef uint64_t* slots = <uint64_t*>calloc(cap, sizeof(uint64_t))
    cdef int64_t* first = <int64_t*>malloc(fcap * sizeof(int64_t))
    cdef int64_t* fspan = <int64_t*>malloc(2 * fcap * sizeof(int64_t))  # start, end of each code's bytes
    cdef uint64_t* hashes = <uint64_t*>malloc(fcap * sizeof(uint64_t))
    cdef void* grown
    if slots == NULL or first == NULL or fspan == NULL or hashes == NULL:
        free(slots); free(first); free(fspan); free(hashes)
        raise MemoryError()
    with nogil:
        mask = cap - 1
        for j in range(min(<int64_t>AHEAD, n)):
            k = j + offset
            ring[j % AHEAD] = hash_bytes(d + offsets[k] if d != NULL else NULL, offsets[k + 1] - offsets[k])
        for i in range(n):
            h = ring[i % AHEAD]
            j = i + AHEAD
            if j < n:  # hash a later row now and fetch its slot's cache line
                k = j + offset
                ring[j % AHEAD] = hash_bytes(d + offsets[k] if d != NULL else NULL, offsets[k + 1] - offsets[k])
                prefetch(&slots[ring[j % AHEAD] & mask])
            j = i + AHEAD // 2
            if j < n:  # that row's slot has arrived: fetch its likely code's span
                slot = slots[ring[j % AHEAD] & mask]
                if slot != 0:
                    prefetch(&fspan[2 * (<int64_t>(slot & 0xFFFFFFFFULL) - 1)])
            j = i + AHEAD // 4
            if j < n and d != NULL:  # and that span has arrived: fetch the bytes the probe compares
                slot = slots[ring[j % AHEAD] & mask]
                if slot != 0 and (slot & 0xFFFFFFFF00000000ULL) == (ring[j % AHEAD] & 0xFFFFFFFF00000000ULL):
                    prefetch(d + fspan[2 * (<int64_t>(slot & 0xFFFFFFFFULL) - 1)])
            k = i + offset
            if has_valid and not (valid[k >> 3] >> (k & 7)) & 1:
                code[i] = -1
                pb = -1
                continue
            a = offsets[k]
            b = offsets[k + 1]
            if pb >= 0 and b - a == pb - pa_ and (a == b or memcmp(d + a, d + pa_, b - a) == 0):
                code[i] = c
                continue
            s = h & mask
            tag = h & 0xFFFFFFFF00000000ULL
            while True:
                slot = slots[s]
                if slot == 0:  # a value not seen before
                    if ndist == fcap:
                        fcap *= 2
                        grown = realloc(first, fcap * sizeof(int64_t))
                        if grown == NULL:
                            ok = 0
                            break
                        first = <int64_t*>grown
                        grown = realloc(fspan, 2 * fcap * sizeof(int64_t))
                        if grown == NULL:
                            ok = 0
                            break
                        fspan = <int64_t*>grown
                        grown = realloc(hashes, fcap * sizeof(uint64_t))
                        if grown == NULL:
                            ok = 0
                            break
                        hashes = <uint64_t*>grown
                    first[ndist] = i
                    fspan[2 * ndist] = a
                    fspan[2 * ndist + 1] = b
                    hashes[ndist] = h
                    slots[s] = tag | <uint64_t>(ndist + 1)
                    c = ndist
                    ndist += 1
                    if ndist * 2 > cap:
                        if not grow_slots(&slots, &cap, hashes, ndist):
                            ok = 0
                        mask = cap - 1
                    break
                if (slot & 0xFFFFFFFF00000000ULL) == tag:
                    e = <int64_t>(slot & 0xFFFFFFFFULL) - 1
                    if (fspan[2 * e + 1] - fspan[2 * e] == b - a
                            and (a == b or memcmp(d + a, d + fspan[2 * e], b - a) == 0)):
                        c = e
                        break
                s = (s + 1) & mask
            if not ok:
                break
            code[i] = c
            pa_ = a
            pb = b
    free(slots)
    free(hashes)
    free(fspan)
    if not ok:
        free(first)
        raise MemoryError()
    out = np.empty(ndist, np.int64)
    cdef int64_t[::1] o = out
    for k in range(ndist):
        o[k] = first[k]
    free(first)
    return out


# ---- outputs -----------------------------------------------------------------


def repeat_strings(const int32_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] line_start,
                   int32_t[::1] out_offsets, uint8_t[::1] out_data):
    """Each of n strings (Arrow ``offsets``, n + 1 of them, into ``data``) once per line of its claim:
    string c for lines ``line_start[c]:line_start[c+1]`` (``line_start[0]`` = 0), into
    ``out_offsets`` (one per line, + 1) and ``out_data`` (exactly their bytes). lines.parquet's
    claim_id from the claims' ids: a sequential copy, not a gather of every line's string from the
    claims' dictionary."""
    cdef int64_t c, i, a, w, pos = 0, total = 0, n = line_start.shape[0] - 1
    if n < 0 or offsets.shape[0] != n + 1 or line_start[0] != 0 or out_offsets.shape[0] != line_start[n] + 1:
        raise ValueError("offsets, line_start and out_offsets do not match")
    for c in range(n):
        total += (offsets[c + 1] - offsets[c]) * (line_start[c + 1] - line_start[c])
    if total != out_data.shape[0] or total >= (<int64_t>1) << 31:
        raise ValueError("out_data does not hold the strings repeated (or needs 64-bit offsets)")
    with nogil:
        for c in range(n):
            a = offsets[c]
            w = offsets[c + 1] - a
            for i in range(line_start[c], line_start[c + 1]):
                out_offsets[i] = pos
                memcpy(&out_data[pos], &data[a], w)
                pos += w
        out_offsets[line_start[n]] = pos


def group_sum(const index_t[::1] key, const int64_t[::1] values, int64_t[::1] out):
    """out[key[i]] += values[i] for every i: exact int64 sums by group (``key`` in [0, len(out)))."""
    cdef int64_t i, n = key.shape[0], k = 0
    if values.shape[0] != n:
        raise ValueError("key and values differ in length")
    with nogil:
        for i in range(n):
            k = key[i]
            if k < 0 or k >= out.shape[0]:
                break
            out[k] += values[i]
    if n and (k < 0 or k >= out.shape[0]):
        raise ValueError(f"a key is outside [0, {out.shape[0]})")
