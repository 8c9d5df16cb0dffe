# The layout of the tables the kernel shares with Python, defined once.
#
# The kernel (_core.pyx, which includes this file) reads these names in C;
# Python reads the same constants from the compiled module, grouped by prefix
# into IntEnums by ``layout.py`` (``layout.BlockField.CAP``, ``layout.ClaimSum.TOTAL``
# ...): policy.py builds the block table by them, engine.py and reference.py
# name the claim-sum and output columns by them. Add a column here and both
# sides see it; never write a column's number anywhere else. (The enums are
# anonymous because Cython indexes memoryviews with ints, not enum types.)

# Columns of the block table ``B`` (policy.compile_policy: one row per block and
# period). policy.FIELDS is these names without F_, in lower case.
cpdef enum:
    F_NBANDS = 0        # bands of the scale
    F_COUNTER = 1       # annual counter the scale reads and advances (-1: per claim)
    F_SCALE_MASK = 2    # classes on the scale (bit k: FUND_CLASSES[k])
    F_NORD = 3          # admission ordinals of the deductible table (0: no deductible)
    F_CAP = 4           # limit index of the cap on fund_pool (-1: none)
    F_OVERFLOW = 5      # 1: what the cap cuts goes to the supplementary tier
    F_TIER_RATE = 6     # supplementary tier rate, bp
    F_TIER_MASK = 7     # classes the tier pays on
    F_SUPP_LIMIT = 8    # limit index of the tier's annual limit (-1: none)
    F_SUB_IN = 9        # civil-servant subsidy rate, in service, bp
    F_SUB_RET = 10      # ... retired
    F_ACCOUNT = 11      # account mode, one of ACCOUNT_*
    F_NACCT = 12        # before-fund account items
    F_P_IN = 13         # the scale's one pool rate (cap overflow), in service, bp
    F_P_RET = 14        # ... retired
    F_INPATIENT = 15    # 1: claims of this block are admissions (ordinal counted)
    F_CAP_ROW = 16      # row of the limit tables for the cap, in the block's period
    F_SUPP_ROW = 17     # ... for the tier's limit

# Values of F_ACCOUNT: the policy's ``account.pays``, in upper case after ACCOUNT_.
cpdef enum:
    ACCOUNT_NONE = 0
    ACCOUNT_MEMBER_SHARE = 1
    ACCOUNT_BEFORE_FUND = 2

# Bits of ``band_flags``, and of an ``acct_items`` mask beside its class bits.
cpdef enum:
    FLAG_DEDUCTIBLE = 1     # band_flags: the band's pieces are deductible
    FLAG_SUBSIDISED = 2     # band_flags: the band's pieces form the subsidy base
    FSP_BIT = 16            # acct_items: the item includes first_self_pay

# Columns of ``claim_sums`` (split_lines writes them, settle_claims reads them).
# SUM_ELIGIBLE_A + k is the eligible amount of FUND_CLASSES[k].
cpdef enum:
    SUM_TOTAL = 0
    SUM_SELF_PAY = 1
    SUM_FIRST_SELF_PAY = 2
    SUM_ELIGIBLE_A = 3
    SUM_ELIGIBLE_B = 4
    SUM_ELIGIBLE_SPECIAL = 5
    SUM_ELIGIBLE_SUPPLEMENTARY = 6

# Columns of settle_claims' ``out``, one row per claim.
cpdef enum:
    OUT_DEDUCTIBLE = 0
    OUT_FUND_POOL = 1
    OUT_FUND_SUPPLEMENTARY = 2
    OUT_SUBSIDY = 3
    OUT_ACCOUNT_PAID = 4
    OUT_ADMISSION_ORDINAL = 5
