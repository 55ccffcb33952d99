# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploratory data analysis
#
# Who interacts with what, and how they rate it: interactions by **gender**, the most popular **categories**, ratings by **gender x category**, the **marketing-bias** tests where the data has product-image segments (Electronics), ratings over the **years**, and the profile every recommender paper reports (size, **sparsity**, **long tail**). All logic lives in `helpers/data/eda.py`, `helpers/data/market_bias.py` and their figures in `helpers/plots/`; this notebook only calls them. Each figure is also saved as PNG under `OUTPUT_DIR/figures/`, and the key numbers go to `OUTPUT_DIR/metrics.json` under `eda`.

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from helpers.data import eda, load, market_bias, sample_users
from helpers.notebooks import record_metrics
from helpers.plots import eda as plots
from helpers.plots import market_bias as bias_plots
from helpers.plots import save_figure

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k (offline default) | electronics (downloaded on first use) | csv:PATH
OUTPUT_DIR = "scratch"  # figures/ and metrics.json go here; make run passes reports (the committed results)
SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0 keeps all. Smoke tests use 2000
SEED = 0  # seed of the user sample
TOP_CATEGORIES = 15  # categories in the popularity chart (the boxplot shows the top 10)

# %% [markdown]
# ## The data
#
# One row per interaction in the canonical schema of `helpers.data`: `user_id, item_id, rating, timestamp` plus side information (`user_gender`, `item_category`, `year`). For ml-100k the category is the movie's genres (a movie counts in each of them) and the year is its release year; for Electronics they are the product category and the review year, and gender is the dataset's `user_attr`.

# %%
df = sample_users(load(DATASET), SAMPLE, seed=SEED)
figures = {}
df.head()

# %% [markdown]
# ## Size and sparsity
#
# The table below is the profile a recommender paper reports. Read the density: the share of the user x item matrix that is observed. MovieLens 100K is dense by recommender standards (about 6%) because every user rated at least 20 movies; Electronics is far sparser, with most users rating a single product.

# %%
profile = eda.dataset_profile(df)
eda.profile_table(profile)

# %% [markdown]
# ## 1. Interactions by gender
#
# The bars count interactions per user gender; the labels give each gender's share, its number of users and interactions per user. In the default ml-100k run men give about three quarters of the ratings (74%): there are about 2.5 times as many male users, and each man rates only a little more (about 111 ratings against 94).

# %%
by_gender = eda.interactions_by_gender(df)
display(by_gender)
figures["interactions_by_gender"] = plots.gender_bar_figure(by_gender, DATASET)

# %% [markdown]
# ## 2. Most popular categories
#
# Categories ranked by interactions. On ml-100k, Drama and Comedy lead by a wide margin, then Action and Thriller; a small set of genres holds most of the activity.

# %%
categories = eda.top_categories(df, TOP_CATEGORIES)
display(categories)
figures["top_categories"] = plots.category_bar_figure(categories, DATASET)

# %% [markdown]
# ## 3. Rating by gender x category
#
# One box per gender within each of the 10 most popular categories (diamond = mean). The medians mostly coincide, so look at the means and at the table of gaps under the plot: it lists the categories where women and men rate most differently, largest gap first. On ml-100k the gaps are small, 0.1 stars at most: women rate Children's films higher, men rate Crime and Sci-Fi higher.

# %%
rows = eda.ratings_by_gender_category(df, n_categories=10)
figures["rating_by_gender_category"] = plots.gender_category_boxplot(rows, DATASET)
gaps = eda.gender_category_gaps(df, n_categories=10)
gaps.round(3)

# %% [markdown]
# ## 4. Marketing bias: product-image segment x user gender
#
# The question of Wan et al. ("Addressing Marketing Bias in Product Recommendations", WSDM 2020): each Electronics product is placed in a segment by the people in its images (`model_attr`: Female, Male, Female&Male); do women and men buy different segments? The first table counts interactions per segment (rows) and known user gender (columns); most Electronics users give no gender and are left out. `share_of_segment` is each gender's part of a segment (rows sum to 1), `share_of_gender` the segment's part of each gender's interactions (columns sum to 1). The bars show the latter, so genders of different sizes compare: where the female bar is taller than the male one, women put more of their purchases into that segment. The second table holds the adjusted standardized residuals of the chi-square test: about N(0, 1) under independence, so a cell above +1.96 is bought more than independence predicts and one below -1.96 less. A dataset without product segments (ml-100k) prints one line and skips this section.

# %%
has_segments = market_bias.has_market_segments(df)
market_record = {}
if has_segments:
    segment_counts = market_bias.segment_gender_counts(df)
    segment_test = market_bias.segment_gender_test(segment_counts)
    display(segment_counts.round(3))
    display(pd.DataFrame(segment_test["residuals"]).round(2))
    figures["segment_by_gender"] = bias_plots.segment_gender_figure(segment_counts, DATASET)
else:
    print(f"{DATASET} has no product segments (needs model_attr and known user_gender): marketing-bias section skipped")

# %% [markdown]
# Do women and men also *rate* the segments differently? The table gives the mean rating per segment x gender with its 95% interval and count; the figure draws the same points with their intervals (its y axis spans the data, not the whole 1-5 scale, so gaps of a tenth of a star show). The two-way ANOVA (type II) under it tests segment, gender and their interaction: a significant interaction means the gender gap in ratings changes from one segment to another. The sentence at the end states, from the numbers above, what the chi-square test and the ANOVA find.

# %%
if has_segments:
    rating_means = market_bias.mean_rating_table(df)
    anova = market_bias.rating_anova(df)
    display(rating_means.round(3))
    display(anova.round(4))
    figures["mean_rating_by_segment_gender"] = bias_plots.mean_rating_figure(rating_means, DATASET)
    print(market_bias.market_bias_sentence(segment_test, anova))
    market_record = {"counts": segment_counts["interactions"].to_dict(), "chi2_test": segment_test,
                     "mean_rating": rating_means.to_dict(orient="records"), "anova": anova.to_dict(orient="index"),
                     "anova_interaction": anova.attrs["interaction"],
                     "left_out_unknown_gender": anova.attrs["left_out_unknown_gender"]}

# %% [markdown]
# ## 5. Ratings over the years
#
# Ratings by the item's year (release year for movies, review year for Electronics); sparse years are grouped into periods so each box rests on enough ratings, and the number above each box says how many. On ml-100k old films are rated higher than recent ones: viewers seek out the classics that survived, while recent releases are watched whatever their quality.

# %%
year_rows = eda.ratings_by_year(df)
figures["ratings_over_years"] = plots.year_boxplot(year_rows, DATASET)

# %% [markdown]
# ## Rating distribution
#
# How often each rating value is given. Ratings lean positive (4 is the most common on ml-100k): people mostly rate what they chose to watch or buy, so low ratings are rare.

# %%
dist = eda.rating_distribution(df)
display(dist)
figures["rating_distribution"] = plots.rating_distribution_figure(dist, DATASET)

# %% [markdown]
# ## Long tail
#
# User activity and item popularity on log-log axes, most active first. The straight-ish fall of the item curve is the long tail: a few items collect a large share of all interactions (the title gives the share held by the top 20%), which is why ranking by popularity is a strong baseline and why re-ranking for the tail matters.

# %%
figures["long_tail"] = plots.long_tail_figure(eda.activity_counts(df), DATASET)

# %% [markdown]
# ## Record
#
# Every figure is saved as PNG and the key numbers are recorded under `eda` in `metrics.json` (with a `market_bias` part when the dataset has product segments), where tests and the README read them by name.

# %%
saved = {name: str(save_figure(fig, name, OUTPUT_DIR)) for name, fig in figures.items()}
record_metrics("eda", {
    "dataset": DATASET, "sample": SAMPLE, "seed": SEED, "profile": profile,
    "by_gender": by_gender.set_index("gender").to_dict(orient="index"),
    "top_categories": categories.set_index("item_category")["interactions"].to_dict(),
    "gender_category_gaps": gaps.set_index("item_category")["gap_female_minus_male"].to_dict(),
    "figures": saved,
    **({"market_bias": market_record} if market_record else {}),
}, path=Path(OUTPUT_DIR) / "metrics.json")
saved
