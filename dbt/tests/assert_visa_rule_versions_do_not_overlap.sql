-- At most one version of a destination's rule applies on any night:
-- validity periods [valid_from, valid_to) of one destination do not overlap.
with

rules as (

    select * from {{ ref('visa_rules') }}

)

select
    earlier.destination,
    earlier.rule_version as earlier_version,
    later.rule_version as later_version

from rules as earlier
inner join rules as later
    on earlier.destination = later.destination
    and earlier.rule_version != later.rule_version
    and earlier.valid_from <= later.valid_from
where earlier.valid_to is null
    or earlier.valid_to > later.valid_from
