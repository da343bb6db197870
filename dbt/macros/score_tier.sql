{#-
    score_tier(score): the published tier of a 350-950 score.

        poor        350-549
        fair        550-599
        good        600-649
        very_good   650-699
        excellent   700-950

    Anything outside 350-950 (or null) gives null, which the marts' tests reject.
-#}
{% macro score_tier(score) -%}
    case
        when {{ score }} between 350 and 549 then 'poor'
        when {{ score }} between 550 and 599 then 'fair'
        when {{ score }} between 600 and 649 then 'good'
        when {{ score }} between 650 and 699 then 'very_good'
        when {{ score }} between 700 and 950 then 'excellent'
    end
{%- endmacro %}
